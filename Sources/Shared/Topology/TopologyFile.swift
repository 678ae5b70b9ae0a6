import Foundation
import Yams

/// A topology file: a whole deployment in one YAML document (see topology/quickstart.yaml).
public struct TopologyFile: Codable, Sendable {
    /// A machine of the deployment. With `topology up --netns` each becomes a network
    /// namespace; an `enterprise` host gets a firewall that drops every inbound connection.
    public struct NetworkHost: Codable, Sendable {
        public var name: String
        public var enterprise: Bool?
        /// How other hosts reach this one (IP or DNS name), for `topology bundle`.
        public var address: String?
    }
    public struct Controller: Codable, Sendable {
        /// Under `controllers:` each has a name (the first is the one routers and tunnelers enroll with).
        public var name: String?
        public var api: SocketAddress?
        public var control: SocketAddress?
        public var host: String?
        /// Circuits one identity may have open at once (the controller's default otherwise).
        public var max_circuits_per_identity: Int?
        /// `sqlite` or `postgres`: the one controller's store (the same as `database:`).
        public var store: String?
    }
    public struct Router: Codable, Sendable {
        public var name: String
        public var roles: [String]?
        public var edge: SocketAddress?
        public var link: SocketAddress?
        public var host: String?
    }
    public struct Link: Codable, Sendable {
        public var name: String?
        public var a: String
        public var b: String
        public var cost: Double?

        public var resolvedName: String { name ?? "\(a)-\(b)" }
    }
    public struct Identity: Codable, Sendable {
        public var name: String
        public var roles: [String]?
    }
    public struct Service: Codable, Sendable {
        public var name: String
        public var roles: [String]?
        public var configs: [String]?
    }
    public struct Config: Codable, Sendable {
        public var name: String
        public var type: String
        public var data: JSONValue
    }
    public struct ServicePolicy: Codable, Sendable {
        public var name: String
        public var type: SessionType
        public var identities: [String]
        public var services: [String]
    }
    public struct EdgeRouterPolicy: Codable, Sendable {
        public var name: String
        public var identities: [String]
        public var routers: [String]
    }
    public struct ServiceEdgeRouterPolicy: Codable, Sendable {
        public var name: String
        public var services: [String]
        public var routers: [String]
    }
    /// An identity provider whose tokens name the people agents act for. Its keys: `jwks_url`,
    /// an `app` of this topology serving them at `path`, or `keys` (a JWK set) inline.
    public struct ExternalJWTSigner: Codable, Sendable {
        public var name: String
        public var issuer: String
        public var audience: String
        public var jwks_url: String?
        public var app: String?
        public var path: String?
        public var keys: JSONValue?
        public var user_claim: String?
        public var attribute_claims: [String]?
    }
    /// Which agents (`agents`: identity roles) may act for which people (`users`).
    public struct DelegationPolicy: Codable, Sendable {
        public var name: String
        public var agents: [String]
        public var users: [String]
    }
    public struct Intercept: Codable, Sendable {
        public var service: String
        public var listen: SocketAddress?
    }
    public struct Host: Codable, Sendable {
        public var service: String
        /// `127.0.0.1:8080` or `unix:/run/service.sock`.
        public var address: LocalAddress?
        public var app: String?
        public var proxy_protocol: Bool?
        public var precedence: TerminatorPrecedence?
        public var cost: Double?
        /// `mcp-gateway`: the tunneler runs the MCP gateway over `upstreams` for this service.
        public var kind: String?
        /// Passed to the gateway as written, after `app:` and `{python}`/`{topology}` are resolved.
        public var upstreams: [JSONValue]?
        public var separator: String?
        public var page_size: Int?
        /// `llm-gateway`: providers as written, after `app:` and placeholders are resolved.
        public var providers: [JSONValue]?
        public var timeout_ms: Int?
        public var retries: Int?
    }
    public struct Tunneler: Codable, Sendable {
        public var name: String?
        public var identity: String
        public var host: String?
        public var intercepts: [Intercept]?
        public var hosts: [Host]?

        public var processName: String { name ?? identity }
    }
    public struct App: Codable, Sendable {
        public var name: String
        public var host: String?
        /// argv; `{port}` is replaced by a free loopback port chosen at `up`.
        public var command: [String]
    }

    public var network: String?
    public var hosts: [NetworkHost]?
    public var controller: Controller?
    /// Several controllers, all active, sharing one PostgreSQL database (`database: postgres`).
    public var controllers: [Controller]?
    /// `sqlite` (default: a file beside the controller) or `postgres` (a server `up` starts for the network).
    public var database: String?
    public var routers: [Router]

    /// `controllers:` or the one `controller:` (named "controller"), or a default one.
    public var allControllers: [Controller] {
        if let controllers, !controllers.isEmpty { return controllers }
        var single = controller ?? Controller()
        single.name = single.name ?? "controller"
        return [single]
    }

    public var usesPostgres: Bool { database == "postgres" || controller?.store == "postgres" }
    public var links: [Link]?
    public var identities: [Identity]?
    public var services: [Service]?
    public var configs: [Config]?
    public var service_policies: [ServicePolicy]?
    public var edge_router_policies: [EdgeRouterPolicy]?
    public var service_edge_router_policies: [ServiceEdgeRouterPolicy]?
    public var external_jwt_signers: [ExternalJWTSigner]?
    public var delegation_policies: [DelegationPolicy]?
    public var tunnelers: [Tunneler]?
    public var apps: [App]?

    /// The keys each mapping may hold, by path; anything else is a typo to report.
    static let allowedKeys: [String: Set<String>] = [
        "": ["network", "hosts", "controller", "controllers", "database", "routers", "links", "identities", "services", "configs", "service_policies",
             "edge_router_policies", "service_edge_router_policies", "external_jwt_signers", "delegation_policies", "tunnelers", "apps"],
        "external_jwt_signers[]": ["name", "issuer", "audience", "jwks_url", "app", "path", "keys", "user_claim", "attribute_claims"],
        "delegation_policies[]": ["name", "agents", "users"],
        "hosts[]": ["name", "enterprise", "address"],
        "controller": ["api", "control", "host", "max_circuits_per_identity", "store"],
        "controllers[]": ["name", "api", "control", "host", "max_circuits_per_identity"],
        "routers[]": ["name", "roles", "edge", "link", "host"],
        "links[]": ["name", "a", "b", "cost"],
        "identities[]": ["name", "roles"],
        "services[]": ["name", "roles", "configs"],
        "configs[]": ["name", "type", "data"],
        "service_policies[]": ["name", "type", "identities", "services"],
        "edge_router_policies[]": ["name", "identities", "routers"],
        "service_edge_router_policies[]": ["name", "services", "routers"],
        "tunnelers[]": ["name", "identity", "host", "intercepts", "hosts"],
        "tunnelers[].intercepts[]": ["service", "listen"],
        "tunnelers[].hosts[]": ["service", "address", "app", "proxy_protocol", "precedence", "cost", "kind", "upstreams", "separator", "page_size",
                                "providers", "timeout_ms", "retries"],
        "tunnelers[].hosts[].providers[]": ["name", "type", "base_url", "app", "path", "api_key_env", "api_key_file", "api_version", "anthropic_version",
                                            "region", "access_key_env", "secret_key_env", "session_token_env", "project", "location",
                                            "service_account_file", "token_url", "private", "optional", "models"],
        "tunnelers[].hosts[].upstreams[]": ["name", "command", "env", "cwd", "url", "app", "path", "headers", "headers_from_env", "bearer_env",
                                            "bearer_file", "prefix", "timeout_ms", "audience"],
        "apps[]": ["name", "host", "command"],
    ]

    /// Loads and checks a topology file; every error names the file, the line and the key.
    public static func load(_ path: String) throws -> TopologyFile {
        let text = try Files.read(path)
        let node: Node
        do {
            guard let composed = try Yams.compose(yaml: text) else { throw TopologyError(file: path, line: 1, key: "", message: "the file is empty") }
            node = composed
        } catch let error as TopologyError {
            throw error
        } catch let error as YamlError {
            let line = 0
            switch error {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
                throw TopologyError(file: path, line: mark.line, key: "", message: "not valid YAML: \(problem)")
            default:
                break
            }
            throw TopologyError(file: path, line: line, key: "", message: "not valid YAML: \(error)")
        }
        try checkKeys(node, path: "", keyPath: "", file: path)
        let topology: TopologyFile
        do {
            topology = try YAMLDecoder().decode(TopologyFile.self, from: node)
        } catch let error as DecodingError {
            throw TopologyError(decoding: error, root: node, file: path)
        }
        try topology.checkReferences(root: node, file: path)
        return topology
    }

    private static func checkKeys(_ node: Node, path: String, keyPath: String, file: String) throws {
        switch node {
        case .mapping(let mapping):
            let allowed = allowedKeys[path]
            for (key, value) in mapping {
                let name = key.string ?? "?"
                let childKeyPath = keyPath.isEmpty ? name : keyPath + "." + name
                if let allowed, !allowed.contains(name) {
                    throw TopologyError(file: file, line: (key.mark?.line ?? 0), key: childKeyPath,
                                        message: "unknown key '\(name)'; expected one of: \(allowed.sorted().joined(separator: ", "))")
                }
                if allowed != nil { try checkKeys(value, path: path.isEmpty ? name : path + "." + name, keyPath: childKeyPath, file: file) }
            }
        case .sequence(let sequence):
            for (index, item) in sequence.enumerated() {
                try checkKeys(item, path: path + "[]", keyPath: "\(keyPath)[\(index)]", file: file)
            }
        default:
            break
        }
    }

    private func checkReferences(root: Node, file: String) throws {
        func fail(_ key: String, _ message: String) -> TopologyError {
            TopologyError(file: file, line: TopologyError.line(of: key, in: root), key: key, message: message)
        }
        guard !routers.isEmpty else { throw fail("routers", "a topology needs at least one router") }
        let hostNames = Set((hosts ?? []).map(\.name))
        func checkHost(_ host: String?, _ key: String) throws {
            if let host, !hostNames.contains(host) { throw fail(key, "host '\(host)' is not declared under hosts") }
        }
        try checkHost(controller?.host, "controller.host")
        if let database, !["sqlite", "postgres"].contains(database) {
            throw fail("database", "database must be 'sqlite' or 'postgres', not '\(database)'")
        }
        if let store = controller?.store, !["sqlite", "postgres"].contains(store) {
            throw fail("controller.store", "store must be 'sqlite' or 'postgres', not '\(store)'")
        }
        if let store = controller?.store, let database, store != database {
            throw fail("controller.store", "controller.store says '\(store)' but database says '\(database)'")
        }
        if let controllers {
            guard controller == nil else { throw fail("controllers", "declare either 'controller:' or 'controllers:', not both") }
            guard !controllers.isEmpty else { throw fail("controllers", "'controllers:' lists at least one controller") }
            var names = Set<String>()
            for (i, entry) in controllers.enumerated() {
                guard let name = entry.name, !name.isEmpty else { throw fail("controllers[\(i)]", "each of several controllers needs a name") }
                guard names.insert(name).inserted else { throw fail("controllers[\(i)].name", "controller '\(name)' is declared twice") }
                try checkHost(entry.host, "controllers[\(i)].host")
            }
            if controllers.count > 1 && !usesPostgres {
                throw fail("controllers", "several controllers share one PostgreSQL database: add 'database: postgres'")
            }
        }
        for (i, router) in routers.enumerated() { try checkHost(router.host, "routers[\(i)].host") }
        for (i, tunneler) in (tunnelers ?? []).enumerated() { try checkHost(tunneler.host, "tunnelers[\(i)].host") }
        for (i, app) in (apps ?? []).enumerated() { try checkHost(app.host, "apps[\(i)].host") }
        let routerNames = Set(routers.map(\.name))
        for (i, link) in (links ?? []).enumerated() {
            for (key, router) in [("a", link.a), ("b", link.b)] where !routerNames.contains(router) {
                throw fail("links[\(i)].\(key)", "router '\(router)' is not declared under routers")
            }
        }
        let identityNames = Set((identities ?? []).map(\.name))
        let serviceNames = Set((services ?? []).map(\.name))
        let appNames = Set((apps ?? []).map(\.name))
        for (i, signer) in (external_jwt_signers ?? []).enumerated() {
            let sources = [signer.jwks_url != nil, signer.app != nil, signer.keys != nil].filter { $0 }.count
            guard sources == 1 else {
                throw fail("external_jwt_signers[\(i)]", "signer '\(signer.name)' needs exactly one of jwks_url, app (with path) or keys")
            }
            if let app = signer.app, !appNames.contains(app) {
                throw fail("external_jwt_signers[\(i)].app", "app '\(app)' is not declared under apps")
            }
        }
        for (i, policy) in (delegation_policies ?? []).enumerated() {
            for (key, list) in [("agents", policy.agents), ("users", policy.users)] {
                if list.isEmpty { throw fail("delegation_policies[\(i)].\(key)", "name at least one '#attribute', '@name' or '#all'") }
                if let problem = RoleExpression.problem(in: list) { throw fail("delegation_policies[\(i)].\(key)", problem) }
            }
        }
        for (i, tunneler) in (tunnelers ?? []).enumerated() {
            guard identityNames.contains(tunneler.identity) else {
                throw fail("tunnelers[\(i)].identity", "identity '\(tunneler.identity)' is not declared under identities")
            }
            for (j, intercept) in (tunneler.intercepts ?? []).enumerated() {
                guard serviceNames.contains(intercept.service) else {
                    throw fail("tunnelers[\(i)].intercepts[\(j)].service", "service '\(intercept.service)' is not declared under services")
                }
                if let listen = intercept.listen, !listen.isLoopback {
                    throw fail("tunnelers[\(i)].intercepts[\(j)].listen", "intercepts listen on loopback only, not \(listen)")
                }
            }
            for (j, host) in (tunneler.hosts ?? []).enumerated() {
                guard serviceNames.contains(host.service) else {
                    throw fail("tunnelers[\(i)].hosts[\(j)].service", "service '\(host.service)' is not declared under services")
                }
                if let app = host.app, !appNames.contains(app) {
                    throw fail("tunnelers[\(i)].hosts[\(j)].app", "app '\(app)' is not declared under apps")
                }
                if host.kind == "llm-gateway" {
                    guard host.app == nil, host.address == nil else {
                        throw fail("tunnelers[\(i)].hosts[\(j)]", "an llm-gateway host has providers, not 'address' or 'app'")
                    }
                    let providers = host.providers ?? []
                    if providers.isEmpty { throw fail("tunnelers[\(i)].hosts[\(j)].providers", "an llm-gateway needs at least one provider") }
                    for (k, provider) in providers.enumerated() {
                        let key = "tunnelers[\(i)].hosts[\(j)].providers[\(k)]"
                        let kinds = ["openai", "azure-openai", "anthropic", "bedrock", "vertex", "ollama", "mock"]
                        guard let type = provider["type"]?.stringValue, kinds.contains(type) else {
                            throw fail(key + ".type", "a provider's type is one of \(kinds.joined(separator: ", "))")
                        }
                        if (provider["models"]?.arrayValue ?? []).isEmpty { throw fail(key + ".models", "a provider needs models") }
                        if let app = provider["app"]?.stringValue, !appNames.contains(app) {
                            throw fail(key + ".app", "app '\(app)' is not declared under apps")
                        }
                    }
                } else if let kind = host.kind {
                    guard kind == "mcp-gateway" else { throw fail("tunnelers[\(i)].hosts[\(j)].kind", "kind '\(kind)' is unknown; known kinds: mcp-gateway, llm-gateway") }
                    guard host.app == nil, host.address == nil else {
                        throw fail("tunnelers[\(i)].hosts[\(j)]", "an mcp-gateway host has upstreams, not 'address' or 'app'")
                    }
                    let upstreams = host.upstreams ?? []
                    if upstreams.isEmpty { throw fail("tunnelers[\(i)].hosts[\(j)].upstreams", "an mcp-gateway needs at least one upstream") }
                    var names = Set<String>()
                    for (k, upstream) in upstreams.enumerated() {
                        let key = "tunnelers[\(i)].hosts[\(j)].upstreams[\(k)]"
                        guard let name = upstream["name"]?.stringValue else { throw fail(key, "an upstream needs a name") }
                        guard names.insert(name).inserted else { throw fail(key + ".name", "two upstreams are named '\(name)'") }
                        let sources = ["command", "url", "app"].filter { upstream[$0] != nil }
                        guard sources.count == 1 else { throw fail(key, "upstream '\(name)' needs exactly one of command (stdio), url or app (Streamable HTTP)") }
                        if let app = upstream["app"]?.stringValue, !appNames.contains(app) {
                            throw fail(key + ".app", "app '\(app)' is not declared under apps")
                        }
                    }
                } else if host.app == nil && host.address == nil {
                    throw fail("tunnelers[\(i)].hosts[\(j)]", "a host entry needs 'address', 'app' or 'kind: mcp-gateway'")
                }
            }
        }
    }
}

/// A mistake in a topology file, located.
public struct TopologyError: Error, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let key: String
    public let message: String

    public init(file: String, line: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    init(decoding error: DecodingError, root: Node, file: String) {
        let (path, message): ([CodingKey], String)
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            (path, message) = (context.codingPath, context.debugDescription)
        case .keyNotFound(let key, let context):
            (path, message) = (context.codingPath + [key], "required key '\(key.stringValue)' is missing")
        case .dataCorrupted(let context):
            (path, message) = (context.codingPath, context.underlyingError.map { "\($0)" } ?? context.debugDescription)
        @unknown default:
            (path, message) = ([], "\(error)")
        }
        let key = Self.keyPath(path)
        // A missing key is reported at its parent mapping.
        let locatable: String
        if case .keyNotFound = error { locatable = Self.keyPath(Array(path.dropLast())) } else { locatable = key }
        self.init(file: file, line: Self.line(of: locatable, in: root), key: key, message: message)
    }

    static func keyPath(_ path: [CodingKey]) -> String {
        var text = ""
        for key in path {
            if let index = key.intValue { text += "[\(index)]" } else { text += text.isEmpty ? key.stringValue : "." + key.stringValue }
        }
        return text
    }

    /// The line of the node at `keyPath` ("tunnelers[0].hosts[1].app"), or of its nearest ancestor.
    static func line(of keyPath: String, in root: Node) -> Int {
        var node = root
        var line = root.mark?.line ?? 1
        var rest = Substring(keyPath)
        while !rest.isEmpty {
            if rest.hasPrefix(".") { rest = rest.dropFirst() }
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]"), let index = Int(rest[rest.index(after: rest.startIndex)..<close]),
                      case .sequence(let sequence) = node, index < sequence.count else { break }
                node = sequence[index]
                rest = rest[rest.index(after: close)...]
            } else {
                let end = rest.firstIndex { $0 == "." || $0 == "[" } ?? rest.endIndex
                let name = String(rest[..<end])
                guard case .mapping(let mapping) = node, let pair = mapping.first(where: { $0.key.string == name }) else { break }
                line = pair.key.mark?.line ?? line
                node = pair.value
                rest = rest[end...]
                continue
            }
            line = node.mark?.line ?? line
        }
        return line
    }

    public var description: String {
        key.isEmpty ? "\(file):\(line): \(message)" : "\(file):\(line): \(key): \(message)"
    }
}
