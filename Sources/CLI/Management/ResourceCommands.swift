import ArgumentParser
import Foundation
import Shared
import Yams

struct ProfileOption: ParsableArguments {
    @Option(help: "Profile file written by 'portless login' (default ~/.portless/profile.json or $PORTLESS_PROFILE).")
    var profile: String?

    func client() throws -> ManagementClient { try Profile.load(profile).client }
}

func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

/// `?a=b&c=d`, each value percent-encoded (a resource URI is a value like any other).
func queryString(_ items: KeyValuePairs<String, String>) -> String {
    queryString(items.map { ($0.key, $0.value) })
}

func queryString(_ items: [(String, String)]) -> String {
    var allowed = CharacterSet.urlQueryAllowed
    allowed.remove(charactersIn: "&=+?#/:")
    let pairs = items.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
    return pairs.isEmpty ? "" : "?" + pairs.joined(separator: "&")
}

func splitList(_ text: String?) -> [String] {
    (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Log in to a controller as admin (over TLS, pinning the network CA).")
    @Option(help: "Controller management URL, e.g. https://127.0.0.1:1280") var controller: String
    @Option var username = "admin"
    @Option(help: "Admin password (or use --credential).") var password: String?
    @Option(help: "The admin.json written by 'portless-controller init' (login and CA).") var credential: String?
    @Option(help: "The network CA (PEM file), when not taken from --credential.") var ca: String?
    @OptionGroup var options: ProfileOption

    func run() async throws {
        guard controller.hasPrefix("https://") else {
            throw ValidationError("the management API is served over TLS only: use https://\(controller.replacingOccurrences(of: "http://", with: ""))")
        }
        var user = username
        var secret = password
        var caPEM = try ca.map { try Files.read($0) }
        if let credential {
            let stored = try Files.readJSON([String: String].self, from: credential)
            user = stored["username"] ?? user
            secret = stored["password"]
            caPEM = caPEM ?? stored["ca"]
        }
        guard let secret else { throw ValidationError("give --password or --credential") }
        guard let caPEM else { throw ValidationError("give --ca (the network's ca.pem) or --credential: the CLI verifies the controller against it") }
        let session = try await ManagementClient.login(controller: controller, caPEM: caPEM, username: user, password: secret)
        try Profile(controller: controller, token: session.token, ca: caPEM).save(options.profile)
        print("Logged in to \(controller) as \(user)")
    }
}

struct IdentityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identity", abstract: "Manage identities.",
                                                    subcommands: [Create.self, Update.self, List.self, Delete.self, Revoke.self, Token.self])
    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set an identity's role attributes (what it may reach follows at once).")
        @Argument var name: String
        @Option(help: "Comma-separated role attributes (empty: none).") var roles: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().put("/v1/identities/\(name)", IdentitySpec(name: name, roles: splitList(roles)), as: IdentityRecord.self))
        }
    }
    struct Create: AsyncParsableCommand {
        @Argument var name: String
        @Option(help: "Comma-separated role attributes.") var roles: String?
        @Option(help: "Write the enrollment token to this file instead of printing it.") var jwt: String?
        @OptionGroup var options: ProfileOption
        func run() async throws {
            let record = try await options.client().post("/v1/identities", IdentitySpec(name: name, roles: splitList(roles)), as: IdentityRecord.self)
            try emitToken(record.enrollmentToken, to: jwt)
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var options: ProfileOption
        func run() async throws { printJSON(try await options.client().get("/v1/identities", as: [IdentityRecord].self)) }
    }
    struct Delete: AsyncParsableCommand {
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws { try await options.client().delete("/v1/identities/\(name)") }
    }
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke the identity's certificates: its connections and circuits close, it must enroll again (issue a token).")
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().post("/v1/identities/\(name)/revoke", [String: String](), as: RevocationResult.self))
        }
    }
    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "enrollment-token", abstract: "Issue a new enrollment token.")
        @Argument var name: String
        @Option var jwt: String?
        @OptionGroup var options: ProfileOption
        func run() async throws {
            let record = try await options.client().post("/v1/identities/\(name)/enrollment-token", [String: String](), as: IdentityRecord.self)
            try emitToken(record.enrollmentToken, to: jwt)
        }
    }
}

struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "router", abstract: "Manage edge routers.",
                                                    subcommands: [Create.self, List.self, Delete.self, Revoke.self])
    struct Create: AsyncParsableCommand {
        @Argument var name: String
        @Option var roles: String?
        @Option var jwt: String?
        @OptionGroup var options: ProfileOption
        func run() async throws {
            let record = try await options.client().post("/v1/routers", RouterSpec(name: name, roles: splitList(roles)), as: RouterRecord.self)
            try emitToken(record.enrollmentToken, to: jwt)
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var options: ProfileOption
        func run() async throws { printJSON(try await options.client().get("/v1/routers", as: [RouterRecord].self)) }
    }
    struct Delete: AsyncParsableCommand {
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws { try await options.client().delete("/v1/routers/\(name)") }
    }
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the router's certificate: its links and connections close; it must enroll again.")
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().post("/v1/routers/\(name)/revoke", [String: String](), as: RevocationResult.self))
        }
    }
}

struct ServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "service", abstract: "Manage services.",
                                                    subcommands: [Create.self, Update.self, List.self, Delete.self])
    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a service's role attributes and configs.")
        @Argument var name: String
        @Option var roles: String
        @Option(help: "Comma-separated config names.") var configs: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().put("/v1/services/\(name)", ServiceSpec(name: name, roles: splitList(roles), configs: splitList(configs)), as: ServiceSpec.self))
        }
    }
    struct Create: AsyncParsableCommand {
        @Argument var name: String
        @Option var roles: String?
        @Option(help: "Comma-separated config names.") var configs: String?
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().post("/v1/services", ServiceSpec(name: name, roles: splitList(roles), configs: splitList(configs)), as: ServiceSpec.self))
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var options: ProfileOption
        func run() async throws { printJSON(try await options.client().get("/v1/services", as: [ServiceSpec].self)) }
    }
    struct Delete: AsyncParsableCommand {
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws { try await options.client().delete("/v1/services/\(name)") }
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Manage intercept.v1, host.v1 and mcp-tools.v1 configs.",
                                                    subcommands: [Create.self, Update.self, List.self, Delete.self])
    struct Create: AsyncParsableCommand {
        @Argument var name: String
        @Option(help: "intercept.v1, host.v1 or mcp-tools.v1") var type: String
        @Option(help: "JSON or YAML data, or @FILE, e.g. '{\"address\":\"127.0.0.1:8080\"}'") var data: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            let value = try ConfigData.read(data)
            printJSON(try await options.client().post("/v1/configs", ConfigSpec(name: name, type: type, data: value), as: ConfigSpec.self))
        }
    }
    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace a config's data (a tool policy change reaches live MCP sessions at once).")
        @Argument var name: String
        @Option(help: "intercept.v1, host.v1 or mcp-tools.v1") var type: String
        @Option(help: "JSON or YAML data, or @FILE") var data: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            let value = try ConfigData.read(data)
            printJSON(try await options.client().put("/v1/configs/\(name)", ConfigSpec(name: name, type: type, data: value), as: ConfigSpec.self))
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var options: ProfileOption
        func run() async throws { printJSON(try await options.client().get("/v1/configs", as: [ConfigSpec].self)) }
    }
    struct Delete: AsyncParsableCommand {
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws { try await options.client().delete("/v1/configs/\(name)") }
    }
}

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Manage service, edge-router, service-edge-router and delegation policies.",
        subcommands: [CreateService.self, UpdateService.self, CreateEdgeRouter.self, CreateServiceEdgeRouter.self, CreateDelegation.self, List.self, Delete.self])

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case service, edgeRouter = "edge-router", serviceEdgeRouter = "service-edge-router", delegation
        var path: String { "/v1/\(rawValue)-policies" }
    }

    struct CreateDelegation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-delegation",
            abstract: "Let agents act for people: an agent presenting a person's token is served only if such a policy matches both.")
        @Argument var name: String
        @Option(help: "Agent identities: '#attr', '@name' or '#all', comma-separated.") var agents: String
        @Option(help: "People: '#attr' (from their signer's attribute claims), '@user' or '#all', comma-separated.") var users: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().post(Kind.delegation.path, DelegationPolicySpec(name: name,
                agentRoles: splitList(agents), userRoles: splitList(users)), as: DelegationPolicySpec.self))
        }
    }

    struct CreateService: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-service")
        @Argument var name: String
        @Option(help: "dial or bind") var type: String
        @Option(help: "Identity roles: '#attr', '@name' or '#all', comma-separated.") var identities: String
        @Option(help: "Service roles.") var services: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            guard let sessionType = SessionType(rawValue: type) else { throw ValidationError("--type must be dial or bind") }
            printJSON(try await options.client().post(Kind.service.path, ServicePolicySpec(name: name, type: sessionType,
                identityRoles: splitList(identities), serviceRoles: splitList(services)), as: ServicePolicySpec.self))
        }
    }
    struct UpdateService: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "update-service",
                                                        abstract: "Change a service policy; what it no longer allows is revoked at once.")
        @Argument var name: String
        @Option(help: "dial or bind") var type: String
        @Option(help: "Identity roles: '#attr', '@name' or '#all', comma-separated.") var identities: String
        @Option(help: "Service roles.") var services: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            guard let sessionType = SessionType(rawValue: type) else { throw ValidationError("--type must be dial or bind") }
            printJSON(try await options.client().put("\(Kind.service.path)/\(name)", ServicePolicySpec(name: name, type: sessionType,
                identityRoles: splitList(identities), serviceRoles: splitList(services)), as: ServicePolicySpec.self))
        }
    }
    struct CreateEdgeRouter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-edge-router")
        @Argument var name: String
        @Option var identities: String
        @Option var routers: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().post(Kind.edgeRouter.path, EdgeRouterPolicySpec(name: name,
                identityRoles: splitList(identities), routerRoles: splitList(routers)), as: EdgeRouterPolicySpec.self))
        }
    }
    struct CreateServiceEdgeRouter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-service-edge-router")
        @Argument var name: String
        @Option var services: String
        @Option var routers: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().post(Kind.serviceEdgeRouter.path, ServiceEdgeRouterPolicySpec(name: name,
                serviceRoles: splitList(services), routerRoles: splitList(routers)), as: ServiceEdgeRouterPolicySpec.self))
        }
    }
    struct List: AsyncParsableCommand {
        @Argument(help: "service, edge-router or service-edge-router") var kind: Kind
        @OptionGroup var options: ProfileOption
        func run() async throws {
            let client = try options.client()
            switch kind {
            case .service: printJSON(try await client.get(kind.path, as: [ServicePolicySpec].self))
            case .edgeRouter: printJSON(try await client.get(kind.path, as: [EdgeRouterPolicySpec].self))
            case .serviceEdgeRouter: printJSON(try await client.get(kind.path, as: [ServiceEdgeRouterPolicySpec].self))
            case .delegation: printJSON(try await client.get(kind.path, as: [DelegationPolicySpec].self))
            }
        }
    }
    struct Delete: AsyncParsableCommand {
        @Argument var kind: Kind
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws { try await options.client().delete("\(kind.path)/\(name)") }
    }
}

struct SignerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signer", abstract: "Manage external JWT signers: the identity providers whose tokens name the people agents act for.",
        subcommands: [Create.self, List.self, Delete.self])
    struct Create: AsyncParsableCommand {
        @Argument var name: String
        @Option(help: "The tokens' issuer ('iss'), exactly.") var issuer: String
        @Option(help: "What the tokens' audience ('aud') must hold.") var audience: String
        @Option(help: "The provider's JWKS URL (fetched and cached by the gateways).") var jwksUrl: String?
        @Option(help: "A file holding the provider's keys as a JWK set, instead of --jwks-url.") var jwksFile: String?
        @Option(help: "The claim that names the person (default sub).") var userClaim: String?
        @Option(help: "Claims whose values become the person's role attributes, comma-separated (e.g. groups).") var attributeClaims: String?
        @OptionGroup var options: ProfileOption
        func run() async throws {
            let keys = try jwksFile.map { try ConfigData.read("@" + $0) }
            let spec = ExternalJWTSignerSpec(name: name, issuer: issuer, audience: audience, jwksURL: jwksUrl, keys: keys, userClaim: userClaim,
                                             attributeClaims: attributeClaims.map(splitList))
            printJSON(try await options.client().post("/v1/external-jwt-signers", spec, as: ExternalJWTSignerSpec.self))
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var options: ProfileOption
        func run() async throws { printJSON(try await options.client().get("/v1/external-jwt-signers", as: [ExternalJWTSignerSpec].self)) }
    }
    struct Delete: AsyncParsableCommand {
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws { try await options.client().delete("/v1/external-jwt-signers/\(name)") }
    }
}

struct LinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "link", abstract: "Manage router links (none: full mesh).",
                                                    subcommands: [Create.self, List.self, Delete.self])
    struct Create: AsyncParsableCommand {
        @Argument var name: String
        @Option(help: "Router that dials.") var a: String
        @Option(help: "Router that is dialed.") var b: String
        @Option(help: "Cost in ms added to the measured latency.") var cost: Double?
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().post("/v1/links", LinkSpec(name: name, a: a, b: b, cost: cost), as: LinkSpec.self))
        }
    }
    struct List: AsyncParsableCommand {
        @OptionGroup var options: ProfileOption
        func run() async throws { printJSON(try await options.client().get("/v1/links", as: [LinkSpec].self)) }
    }
    struct Delete: AsyncParsableCommand {
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws { try await options.client().delete("/v1/links/\(name)") }
    }
}

struct ControllersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "controller", abstract: "List the network's controllers, or remove one for good.",
                                                    subcommands: [List.self, Remove.self])
    struct List: AsyncParsableCommand {
        @OptionGroup var options: ProfileOption
        func run() async throws { printJSON(try await options.client().get("/v1/controllers", as: [ControllerRecord].self)) }
    }
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop routers and tunnelers dialing a controller taken out of service (through another controller).")
        @Argument var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws { try await options.client().delete("/v1/controllers/\(name)") }
    }
}

struct NetworkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "network", abstract: "Show live routers, links, terminators and circuits.")
    @OptionGroup var options: ProfileOption
    func run() async throws { printJSON(try await options.client().get("/v1/network", as: NetworkStatus.self)) }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Query the audit trail: what did an identity do, when, over which circuit.")
    @Option var limit = 100
    @Option(help: "Only this event type, e.g. circuit.opened") var type: String?
    @Option(help: "Only events of this identity.") var identity: String?
    @Option(help: "What agents did for this person: their model and tool calls, and the circuits that carried them.") var user: String?
    @Option(help: "Only events of this service.") var service: String?
    @Option(help: "Only events of this circuit.") var circuit: UInt64?
    @Option(help: "From this time (ISO 8601).") var since: String?
    @Option(help: "Until this time (ISO 8601).") var until: String?
    @Option(help: "Only the gateway records of this trace (its 32-hex-digit id).") var trace: String?
    @Flag(help: "Check the hash chain instead of listing events.") var verify = false
    @OptionGroup var options: ProfileOption

    func run() async throws {
        if verify {
            struct Verification: Codable { var rows: Int; var intact: Bool; var brokenAtSeq: Int64? }
            let result = try await options.client().get("/v1/audit/verify", as: Verification.self)
            print(result.intact ? "audit trail intact: \(result.rows) events, hash chain verified"
                                : "AUDIT TRAIL BROKEN at event \(result.brokenAtSeq ?? 0) (of \(result.rows))")
            if !result.intact { throw ExitCode(2) }
            return
        }
        var query = ["limit=\(limit)"]
        for (key, value) in [("type", type), ("identity", identity), ("user", user), ("service", service), ("circuit", circuit.map(String.init)),
                             ("since", since), ("until", until), ("trace", trace)] {
            if let value, let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) { query.append("\(key)=\(encoded)") }
        }
        printJSON(try await options.client().get("/v1/audit?" + query.joined(separator: "&"), as: [AuditEvent].self))
    }
}

func emitToken(_ token: String?, to file: String?) throws {
    guard let token else { throw ManagementError.unreadable(path: "enrollment token", detail: "missing") }
    if let file { try Files.write(token, to: file, privateFile: true); print("Enrollment token written to \(file)") }
    else { print(token) }
}

/// A config's data from the command line: JSON or YAML text, or `@FILE`.
enum ConfigData {
    static func read(_ argument: String) throws -> JSONValue {
        let text = argument.hasPrefix("@") ? try Files.read(String(argument.dropFirst())) : argument
        do { return try YAMLDecoder().decode(JSONValue.self, from: text) } catch {
            throw ValidationError("config data is neither JSON nor YAML: \(error)")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
