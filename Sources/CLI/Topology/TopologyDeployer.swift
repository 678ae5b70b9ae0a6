import Foundation
import Shared

/// `topology up`: PKI, controller, every resource of the file, enrollment, processes, readiness.
/// On any failure it stops what it started and reports where to look.
struct TopologyDeployer {
    let file: String
    let topology: TopologyFile
    let state: String
    let binaries: String
    private var started: [TopologyState.Process] = []

    init(file: String, topology: TopologyFile, state: String) {
        self.file = file
        self.topology = topology
        self.state = state
        let ownDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
        binaries = ProcessInfo.processInfo.environment["PORTLESS_BIN_DIR"] ?? ownDirectory
    }

    mutating func up() async throws -> TopologyState {
        if FileManager.default.fileExists(atPath: TopologyState.path(state)),
           let existing = try? Files.readJSON(TopologyState.self, from: TopologyState.path(state)),
           existing.processes.contains(where: { ProcessLauncher.isAlive($0.pid) }) {
            throw DeployError.alreadyRunning(state)
        }
        if FileManager.default.fileExists(atPath: state + "/controller") {
            throw DeployError.stateNotEmpty(state)
        }
        try Files.createDirectory(state + "/logs")
        do {
            return try await deploy()
        } catch {
            ProcessLauncher.stop(started.map(\.pid).reversed())
            try? FileManager.default.removeItem(atPath: TopologyState.path(state))
            throw DeployError.failed("\(error)", logs: state + "/logs")
        }
    }

    private mutating func deploy() async throws -> TopologyState {
        let api = try FreePort.resolve(topology.controller?.api)
        let control = try FreePort.resolve(topology.controller?.control)
        let controllerDir = state + "/controller"
        try runTool("portless-controller", ["init", "--state", controllerDir, "--network", topology.network ?? "portless",
                                            "--api", api.description, "--control", control.description])
        try launch("controller", kind: "controller", ["portless-controller", "run", "--state", controllerDir])
        let url = "http://\(api)"
        try await waitFor("the controller API at \(url)", timeout: 30) { FreePort.accepts(api) }

        let credential = try Files.readJSON([String: String].self, from: controllerDir + "/admin.json")
        let login = try await ManagementClient.login(controller: url, username: "admin", password: credential["password"] ?? "")
        let profile = Profile(controller: url, token: login.token)
        try profile.save(state + "/profile.json")
        let client = profile.client

        for config in topology.configs ?? [] {
            _ = try await client.post("/v1/configs", ConfigSpec(name: config.name, type: config.type, data: config.data), as: ConfigSpec.self)
        }
        for service in topology.services ?? [] {
            _ = try await client.post("/v1/services", ServiceSpec(name: service.name, roles: service.roles ?? [], configs: service.configs ?? []), as: ServiceSpec.self)
        }
        var identityTokens: [String: String] = [:]
        for identity in topology.identities ?? [] {
            let record = try await client.post("/v1/identities", IdentitySpec(name: identity.name, roles: identity.roles ?? []), as: IdentityRecord.self)
            identityTokens[identity.name] = record.enrollmentToken
        }
        var routerTokens: [String: String] = [:]
        for router in topology.routers {
            let record = try await client.post("/v1/routers", RouterSpec(name: router.name, roles: router.roles ?? []), as: RouterRecord.self)
            routerTokens[router.name] = record.enrollmentToken
        }
        for link in topology.links ?? [] {
            _ = try await client.post("/v1/links", LinkSpec(name: link.resolvedName, a: link.a, b: link.b, cost: link.cost), as: LinkSpec.self)
        }
        for policy in topology.service_policies ?? [] {
            _ = try await client.post("/v1/service-policies", ServicePolicySpec(name: policy.name, type: policy.type,
                identityRoles: policy.identities, serviceRoles: policy.services), as: ServicePolicySpec.self)
        }
        // Without explicit router policies, every identity may use every router for every service.
        let edgeRouterPolicies = topology.edge_router_policies.map { $0.map { EdgeRouterPolicySpec(name: $0.name, identityRoles: $0.identities, routerRoles: $0.routers) } }
            ?? [EdgeRouterPolicySpec(name: "all-identities-all-routers", identityRoles: ["#all"], routerRoles: ["#all"])]
        for policy in edgeRouterPolicies {
            _ = try await client.post("/v1/edge-router-policies", policy, as: EdgeRouterPolicySpec.self)
        }
        let serviceEdgeRouterPolicies = topology.service_edge_router_policies.map { $0.map { ServiceEdgeRouterPolicySpec(name: $0.name, serviceRoles: $0.services, routerRoles: $0.routers) } }
            ?? [ServiceEdgeRouterPolicySpec(name: "all-services-all-routers", serviceRoles: ["#all"], routerRoles: ["#all"])]
        for policy in serviceEdgeRouterPolicies {
            _ = try await client.post("/v1/service-edge-router-policies", policy, as: ServiceEdgeRouterPolicySpec.self)
        }

        for router in topology.routers {
            let dir = state + "/routers/" + router.name
            try Files.createDirectory(dir)
            try Files.write(routerTokens[router.name] ?? "", to: dir + "/enroll.jwt", privateFile: true)
            try runTool("portless-router", ["enroll", "--token", "@" + dir + "/enroll.jwt", "--state", dir])
            let edge = try FreePort.resolve(router.edge)
            let link = try FreePort.resolve(router.link)
            try launch(router.name, kind: "router", ["portless-router", "run", "--state", dir, "--edge", edge.description,
                                                     "--link", link.description])
        }

        var appAddresses: [String: SocketAddress] = [:]
        for app in topology.apps ?? [] {
            let port = try FreePort.pick()
            appAddresses[app.name] = SocketAddress(host: "127.0.0.1", port: port)
            var argv = app.command.map { $0.replacingOccurrences(of: "{port}", with: String(port)) }
            if let first = argv.first, !first.contains("/") { argv[0] = resolveProgram(first) }
            let pid = try ProcessLauncher.spawn(argv, log: state + "/logs/\(app.name).log")
            started.append(.init(name: app.name, kind: "app", pid: pid, log: state + "/logs/\(app.name).log"))
        }

        var intercepts: [TopologyState.Intercept] = []
        for tunneler in topology.tunnelers ?? [] {
            let dir = state + "/tunnelers/" + tunneler.processName
            try Files.createDirectory(dir)
            try Files.write(identityTokens[tunneler.identity] ?? "", to: dir + "/enroll.jwt", privateFile: true)
            try runTool("portless-tunnel", ["enroll", "--token", "@" + dir + "/enroll.jwt", "--state", dir + "/identity"])
            var config: [String: JSONValue] = ["identity": .string(dir + "/identity")]
            var interceptEntries: [JSONValue] = []
            for intercept in tunneler.intercepts ?? [] {
                let listen = try FreePort.resolve(intercept.listen)
                interceptEntries.append(.object(["service": .string(intercept.service), "listen": .string(listen.description)]))
                intercepts.append(.init(tunneler: tunneler.processName, service: intercept.service, address: listen.description))
            }
            var hostEntries: [JSONValue] = []
            for host in tunneler.hosts ?? [] {
                let address = host.address ?? host.app.flatMap { appAddresses[$0] }
                var entry: [String: JSONValue] = ["service": .string(host.service), "proxy_protocol": .bool(host.proxy_protocol ?? false)]
                if let address { entry["address"] = .string(address.description) }
                hostEntries.append(.object(entry))
            }
            config["intercepts"] = .array(interceptEntries)
            config["hosts"] = .array(hostEntries)
            try Files.writeJSON(JSONValue.object(config), to: dir + "/tunnel.json")
            try launch(tunneler.processName, kind: "tunneler", ["portless-tunnel", "run", "--config", dir + "/tunnel.json"])
        }

        let status = TopologyState(processes: started, intercepts: intercepts, controller: url)
        try Files.writeJSON(status, to: TopologyState.path(state))

        // Ready: every router online with its links up, every hosted service has its terminators,
        // every intercept accepts.
        let routerCount = topology.routers.count
        let expectedLinks = topology.links?.count ?? routerCount * (routerCount - 1) / 2
        let expectedTerminators = Set((topology.tunnelers ?? []).flatMap { t in (t.hosts ?? []).map { "\($0.service)|\(t.identity)" } })
        try await waitFor("all routers online and linked, and all hosted services bound", timeout: 45) {
            guard let network = try? await client.get("/v1/network", as: NetworkStatus.self) else { return false }
            let bound = Set(network.terminators.map { "\($0.service)|\($0.identity)" })
            return network.routers.count == routerCount && network.links.count >= expectedLinks && expectedTerminators.isSubset(of: bound)
        }
        for intercept in intercepts {
            let address = try SocketAddress(parsing: intercept.address)
            try await waitFor("intercept \(intercept.service) on \(address)", timeout: 20) { FreePort.accepts(address) }
        }
        return status
    }

    private func resolveProgram(_ name: String) -> String {
        let local = binaries + "/" + name
        if FileManager.default.isExecutableFile(atPath: local) { return local }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return name
    }

    private func runTool(_ program: String, _ arguments: [String]) throws {
        let result = try ProcessLauncher.run([resolveProgram(program)] + arguments)
        guard result.status == 0 else { throw DeployError.step("\(program) \(arguments.first ?? "")", result.output) }
    }

    private mutating func launch(_ name: String, kind: String, _ argv: [String]) throws {
        let log = state + "/logs/\(name).log"
        let pid = try ProcessLauncher.spawn([resolveProgram(argv[0])] + argv.dropFirst(), log: log)
        started.append(.init(name: name, kind: kind, pid: pid, log: log))
        try? Files.writeJSON(TopologyState(processes: started, intercepts: [], controller: nil), to: TopologyState.path(state))
    }

    private func waitFor(_ what: String, timeout: TimeInterval, _ check: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if await check() { return }
            for process in started where !ProcessLauncher.isAlive(process.pid) {
                throw DeployError.processDied(process.name, log: process.log, tail: Self.tail(process.log))
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw DeployError.timeout(what)
    }

    static func tail(_ path: String, lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

enum DeployError: Error, CustomStringConvertible {
    case alreadyRunning(String)
    case stateNotEmpty(String)
    case step(String, String)
    case processDied(String, log: String, tail: String)
    case timeout(String)
    indirect case failed(String, logs: String)

    var description: String {
        switch self {
        case .alreadyRunning(let state): return "a topology is already running from \(state); run 'portless topology down --state \(state)' first"
        case .stateNotEmpty(let state): return "\(state) already holds a network; choose an empty --state directory"
        case .step(let what, let output): return "\(what) failed:\n\(output)"
        case .processDied(let name, let log, let tail): return "\(name) exited during start-up; \(log) ends with:\n\(tail)"
        case .timeout(let what): return "timed out waiting for \(what)"
        case .failed(let why, let logs): return "topology up failed (everything started was stopped; logs in \(logs)): \(why)"
        }
    }
}
