import Foundation
import Shared

/// `topology up` and `topology apply`. `up` creates the PKI and starts the controller, then
/// converges; `apply` converges a running network. Converging reconciles the controller's
/// resources to the file, then the processes: it enrolls and starts what is new, restarts what
/// changed, stops what is gone, and returns when the network is ready. If `up` fails it stops
/// everything it started and reports where to look.
struct TopologyDeployer {
    let topology: TopologyFile
    let topologyDirectory: String
    let state: String
    let binaries: String
    private var record: TopologyState
    private var startedNow: [Int32] = []

    init(topology: TopologyFile, state: String, file: String) {
        self.topologyDirectory = URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL.path
        self.topology = topology
        self.state = state
        binaries = ProcessLauncher.binaryDirectory
        record = TopologyState.load(state) ?? TopologyState(processes: [], intercepts: [], controller: nil, ports: [:], launched: [:])
    }

    mutating func up(inNamespaces: Bool = false) async throws -> (TopologyState, [String]) {
        if record.processes.contains(where: { ProcessLauncher.isAlive($0.pid) }) { throw DeployError.alreadyRunning(state) }
        if FileManager.default.fileExists(atPath: state + "/controller") { throw DeployError.stateNotEmpty(state) }
        try Files.createDirectory(state + "/logs")
        do {
            if inNamespaces { record.netns = try NetworkNamespaces.create(for: topology) }
            let client = try await startController()
            let changes = try await converge(client)
            return (record, changes)
        } catch {
            ProcessLauncher.stop(startedNow.reversed())
            if let postgres = record.postgres { try? LocalPostgres(directory: postgres).stop() }
            record.netns?.destroy()
            try? FileManager.default.removeItem(atPath: TopologyState.path(state))
            throw DeployError.failed("\(error)", logs: state + "/logs")
        }
    }

    mutating func apply() async throws -> (TopologyState, [String]) {
        guard let controller = record.processes.first(where: { $0.kind == "controller" }), ProcessLauncher.isAlive(controller.pid),
              let url = record.controller else {
            throw DeployError.notRunning(state)
        }
        let client = try await login(url)
        let changes = try await converge(client)
        return (record, changes)
    }

    /// Starts the controllers: the first one creates the network, the others join it on the same
    /// PostgreSQL database (which `database: postgres` has `up` start first).
    private mutating func startController() async throws -> ManagementClient {
        var store: [String] = []
        if topology.usesPostgres {
            let postgres = LocalPostgres(directory: state + "/postgres")
            record.postgres = postgres.directory
            try? Files.writeJSON(record, to: TopologyState.path(state))
            try postgres.start()
            store = ["--store", postgres.url]
        }
        var urls: [String] = []
        for (index, entry) in topology.allControllers.enumerated() {
            let name = entry.name ?? "controller"
            let api: SocketAddress
            let control: SocketAddress
            if let netns = record.netns {
                let ip = netns.address(host(of: entry.host))
                api = SocketAddress(host: ip, port: entry.api?.port ?? 1280 + 10 * index)
                control = SocketAddress(host: ip, port: entry.control?.port ?? 6262 + 10 * index)
            } else {
                api = try FreePort.resolve(entry.api)
                control = try FreePort.resolve(entry.control)
            }
            let directory = index == 0 ? state + "/controller" : state + "/controllers/" + name
            try runTool("portless-controller", ["init", "--state", directory, "--network", topology.network ?? "portless",
                                                "--api", api.description, "--control", control.description, "--name", name] + store
                            + (index == 0 ? [] : ["--join", state + "/controller"])
                            + (entry.max_circuits_per_identity.map { ["--max-circuits-per-identity", String($0)] } ?? []))
            let process = index == 0 ? "controller" : name
            try launch(process, kind: "controller", ["portless-controller", "run", "--state", directory] + metricsFlag(for: process), host: entry.host)
            let url = "https://\(api)"
            urls.append(url)
            try await waitFor("the controller API at \(url)", timeout: 30) { FreePort.accepts(api) }
        }
        record.controller = urls.first
        record.controllers = urls
        return try await login(urls.first ?? "")
    }

    private func login(_ url: String) async throws -> ManagementClient {
        let credential = try Files.readJSON([String: String].self, from: state + "/controller/admin.json")
        let caPEM = try Files.read(state + "/controller/ca.pem")
        let session = try await ManagementClient.login(controller: url, caPEM: caPEM, username: "admin", password: credential["password"] ?? "")
        let profile = Profile(controller: url, token: session.token, ca: caPEM)
        try profile.save(state + "/profile.json")
        return profile.client
    }

    private mutating func converge(_ client: ManagementClient) async throws -> [String] {
        // App addresses are fixed before anything starts: resources may point at an app.
        var appPorts: [String: String] = [:]
        for app in topology.apps ?? [] { appPorts[app.name] = try port("app/\(app.name)", nil) }
        let outcome = try await ResourceReconciler(topology: topology, client: client, appAddress: { appPorts[$0] }).reconcile()
        var changes = outcome.changes

        var wanted: Set<String> = Set(topology.allControllers.dropFirst().map { $0.name ?? "" }).union(["controller"])
        for router in topology.routers {
            wanted.insert(router.name)
            let dir = state + "/routers/" + router.name
            if !FileManager.default.fileExists(atPath: dir + "/identity.json") {
                let token = try await enrollmentToken(outcome.routerTokens[router.name], path: "/v1/routers/\(router.name)/enrollment-token",
                                                      client: client, as: RouterRecord.self, \.enrollmentToken)
                try Files.createDirectory(dir)
                try Files.write(token, to: dir + "/enroll.jwt", privateFile: true)
                try runTool("portless-router", ["enroll", "--token", "@" + dir + "/enroll.jwt", "--state", dir])
            }
            let (edge, link) = try routerAddresses(router)
            try ensure(router.name, kind: "router", ["portless-router", "run", "--state", dir, "--edge", edge, "--link", link]
                           + metricsFlag(for: router.name), host: router.host, &changes)
        }

        var appAddresses: [String: String] = [:]
        var listeningApps: [ListeningApp] = []
        for app in topology.apps ?? [] {
            wanted.insert(app.name)
            let address = try port("app/\(app.name)", nil)
            appAddresses[app.name] = address
            let portText = String(address.split(separator: ":").last ?? "")
            try ensure(app.name, kind: "app", app.command.map { placeholders($0).replacingOccurrences(of: "{port}", with: portText) },
                       host: app.host, &changes)
            if app.command.contains(where: { $0.contains("{port}") }) {
                listeningApps.append(ListeningApp(name: app.name, address: address, host: app.host))
            }
        }

        var intercepts: [TopologyState.Intercept] = []
        for tunneler in topology.tunnelers ?? [] {
            wanted.insert(tunneler.processName)
            let dir = state + "/tunnelers/" + tunneler.processName
            if !FileManager.default.fileExists(atPath: dir + "/identity/identity.json") {
                let token = try await enrollmentToken(outcome.identityTokens[tunneler.identity], path: "/v1/identities/\(tunneler.identity)/enrollment-token",
                                                      client: client, as: IdentityRecord.self, \.enrollmentToken)
                try Files.createDirectory(dir)
                try Files.write(token, to: dir + "/enroll.jwt", privateFile: true)
                try runTool("portless-tunnel", ["enroll", "--token", "@" + dir + "/enroll.jwt", "--state", dir + "/identity"])
            }
            var interceptEntries: [JSONValue] = []
            for intercept in tunneler.intercepts ?? [] {
                let listen = try port("intercept/\(tunneler.processName)/\(intercept.service)", intercept.listen)
                interceptEntries.append(.object(["service": .string(intercept.service), "listen": .string(listen)]))
                intercepts.append(.init(tunneler: tunneler.processName, service: intercept.service, address: listen))
            }
            let hostEntries: [JSONValue] = (tunneler.hosts ?? []).map { host in
                var entry: [String: JSONValue] = ["service": .string(host.service), "proxy_protocol": .bool(host.proxy_protocol ?? false)]
                if let precedence = host.precedence { entry["precedence"] = .string(precedence.rawValue) }
                if let cost = host.cost { entry["cost"] = .number(cost) }
                if let address = host.address?.description ?? host.app.flatMap({ appAddresses[$0] }) { entry["address"] = .string(address) }
                if host.kind != nil {
                    entry["proxy_protocol"] = nil
                    entry.merge(GatewayUpstreams.hostFields(host, appAddress: { appAddresses[$0] }, fill: placeholders)) { $1 }
                }
                return .object(entry)
            }
            let config = JSONValue.object(["identity": .string(dir + "/identity"), "intercepts": .array(interceptEntries), "hosts": .array(hostEntries)])
            try Files.writeJSON(config, to: dir + "/tunnel.json")
            // The config's content is part of what the process was started with: a change restarts it.
            try ensure(tunneler.processName, kind: "tunneler", ["portless-tunnel", "run", "--config", dir + "/tunnel.json"]
                           + metricsFlag(for: tunneler.processName),
                       host: tunneler.host, fingerprint: canonical(config), &changes)
        }
        record.intercepts = intercepts

        for process in record.processes where !wanted.contains(process.name) {
            ProcessLauncher.stop([process.pid])
            record.launched?[process.name] = nil
            changes.append("stopped \(process.kind) \(process.name)")
        }
        record.processes.removeAll { !wanted.contains($0.name) }
        try Files.writeJSON(record, to: TopologyState.path(state))
        try await waitUntilReady(client, apps: listeningApps)
        return changes
    }

    private func enrollmentToken<R: Decodable>(_ fresh: String?, path: String, client: ManagementClient, as: R.Type,
                                               _ field: KeyPath<R, String?>) async throws -> String {
        if let fresh { return fresh }
        let record = try await client.post(path, [String: String](), as: R.self)
        guard let token = record[keyPath: field] else { throw DeployError.step("enrollment token", "none issued by \(path)") }
        return token
    }

    /// A stable address for a `:0` (or missing) port: chosen once, reused by every later apply.
    /// Every controller, router and tunneler serves Prometheus metrics on its host's loopback.
    private mutating func metricsFlag(for name: String) throws -> [String] {
        ["--metrics", try port("metrics/\(name)", nil)]
    }

    private mutating func port(_ key: String, _ requested: SocketAddress?) throws -> String {
        if let requested, requested.port != 0 { return requested.description }
        if let known = record.ports?[key] { return known }
        let chosen = try FreePort.resolve(requested).description
        record.ports = (record.ports ?? [:]).merging([key: chosen]) { $1 }
        return chosen
    }

    /// `{python}`: the interpreter with the MCP libraries (see `python`); `{topology}`: the
    /// directory of the topology file; `{state}`: the deployment's state directory.
    private func placeholders(_ text: String) -> String {
        text.replacingOccurrences(of: "{python}", with: Self.python(near: [topologyDirectory, binaries]))
            .replacingOccurrences(of: "{topology}", with: topologyDirectory)
            .replacingOccurrences(of: "{state}", with: state)
    }

    /// `$PORTLESS_PYTHON`; else the project's virtualenv (`.build/venv`, what `make venv` makes)
    /// found above the topology file or the binaries; else `python3`.
    static func python(near directories: [String]) -> String {
        if let chosen = ProcessInfo.processInfo.environment["PORTLESS_PYTHON"], !chosen.isEmpty { return chosen }
        for start in directories {
            var directory = URL(fileURLWithPath: start).standardizedFileURL
            for _ in 0..<8 {
                let candidate = directory.appendingPathComponent(".build/venv/bin/python").path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
                if directory.lastPathComponent == ".build", FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("venv/bin/python").path) {
                    return directory.appendingPathComponent("venv/bin/python").path
                }
                let parent = directory.deletingLastPathComponent()
                if parent.path == directory.path { break }
                directory = parent
            }
        }
        return "python3"
    }

    private func canonical(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Starts `name` unless it runs with the same command line (and fingerprint); restarts it if they changed.
    /// The host a component runs on; the first host when it names none.
    private func host(of name: String?) -> String {
        name ?? topology.hosts?.first?.name ?? "default"
    }

    /// Edge and link listeners: on the router's host address in namespaces, on loopback otherwise.
    private mutating func routerAddresses(_ router: TopologyFile.Router) throws -> (String, String) {
        guard let netns = record.netns else {
            return (try port("router/\(router.name)/edge", router.edge), try port("router/\(router.name)/link", router.link))
        }
        let ip = netns.address(host(of: router.host))
        let index = topology.routers.firstIndex { $0.name == router.name } ?? 0
        return ("\(ip):\(router.edge?.port ?? 3022 + 2 * index)", "\(ip):\(router.link?.port ?? 3023 + 2 * index)")
    }

    private mutating func ensure(_ name: String, kind: String, _ argv: [String], host: String? = nil, fingerprint: String = "",
                                 _ changes: inout [String]) throws {
        let signature = argv + (fingerprint.isEmpty ? [] : [fingerprint])
        if let running = record.processes.first(where: { $0.name == name }), ProcessLauncher.isAlive(running.pid) {
            if record.launched?[name] == signature { return }
            ProcessLauncher.stop([running.pid])
            record.processes.removeAll { $0.name == name }
            changes.append("restarted \(kind) \(name)")
        } else {
            record.processes.removeAll { $0.name == name }
            changes.append("started \(kind) \(name)")
        }
        try launch(name, kind: kind, argv, host: host)
        record.launched = (record.launched ?? [:]).merging([name: signature]) { $1 }
    }

    /// Ready: every router online with its links up, every hosted service has its terminators,
    /// every intercept accepts.
    private func waitUntilReady(_ client: ManagementClient, apps: [ListeningApp]) async throws {
        let routerNames = Set(topology.routers.map(\.name))
        let expectedLinks = topology.links?.count ?? routerNames.count * (routerNames.count - 1) / 2
        let expectedTerminators = Set((topology.tunnelers ?? []).flatMap { t in (t.hosts ?? []).map { "\($0.service)|\(t.identity)" } })
        try await waitFor("all routers online and linked, and all hosted services bound", timeout: 45) {
            guard let network = try? await client.get("/v1/network", as: NetworkStatus.self) else { return false }
            let bound = Set(network.terminators.map { "\($0.service)|\($0.identity)" })
            return routerNames.isSubset(of: Set(network.routers)) && network.links.count >= expectedLinks && expectedTerminators.isSubset(of: bound)
        }
        // A tunneler connects to the app it hosts only when a circuit arrives: an app still starting
        // would refuse the first callers although everything else is ready.
        for app in apps {
            if let netns = record.netns {
                try await waitFor("app \(app.name) on \(app.address) in \(host(of: app.host))", timeout: 30) {
                    netns.accepts(app.address, in: host(of: app.host))
                }
            } else {
                let address = try SocketAddress(parsing: app.address)
                try await waitFor("app \(app.name) on \(app.address)", timeout: 30) { FreePort.accepts(address) }
            }
        }
        for intercept in record.intercepts {
            let address = try SocketAddress(parsing: intercept.address)
            if let netns = record.netns {
                let tunnelerHost = host(of: topology.tunnelers?.first { $0.processName == intercept.tunneler }?.host)
                try await waitFor("intercept \(intercept.service) on \(address) in \(tunnelerHost)", timeout: 20) {
                    netns.accepts(intercept.address, in: tunnelerHost)
                }
            } else {
                try await waitFor("intercept \(intercept.service) on \(address)", timeout: 20) { FreePort.accepts(address) }
            }
        }
    }

    /// An app the file starts with a `{port}` to listen on.
    private struct ListeningApp {
        let name: String
        let address: String
        let host: String?
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

    private mutating func launch(_ name: String, kind: String, _ argv: [String], host: String? = nil) throws {
        let log = state + "/logs/\(name).log"
        let program = argv[0].contains("/") ? argv[0] : resolveProgram(argv[0])
        let prefix = record.netns?.exec(self.host(of: host)) ?? []
        let pid = try ProcessLauncher.spawn(prefix + ProcessLauncher.wrapper(for: name) + [program] + argv.dropFirst(), log: log)
        startedNow.append(pid)
        let metrics = argv.firstIndex(of: "--metrics").flatMap { argv.indices.contains($0 + 1) ? argv[$0 + 1] : nil }
        record.processes.append(.init(name: name, kind: kind, pid: pid, log: log, metrics: metrics))
        try? Files.writeJSON(record, to: TopologyState.path(state))
    }

    private func waitFor(_ what: String, timeout: TimeInterval, _ check: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if await check() { return }
            for process in record.processes where !ProcessLauncher.isAlive(process.pid) {
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
    case notRunning(String)
    case stateNotEmpty(String)
    case step(String, String)
    case processDied(String, log: String, tail: String)
    case timeout(String)
    indirect case failed(String, logs: String)

    var description: String {
        switch self {
        case .alreadyRunning(let state): return "a topology is already running from \(state); run 'portless topology down --state \(state)' first"
        case .notRunning(let state): return "no network is running from \(state); start one with 'portless topology up FILE --state \(state)'"
        case .stateNotEmpty(let state): return "\(state) already holds a network; choose an empty --state directory"
        case .step(let what, let output): return "\(what) failed:\n\(output)"
        case .processDied(let name, let log, let tail):
            var text = "\(name) exited during start-up; \(log) ends with:\n\(tail)"
            if tail.contains("ModuleNotFoundError") || tail.contains("No module named") {
                text += "\n\(name) needs Python packages the interpreter lacks: run 'make venv' in the Portless checkout, or set PORTLESS_PYTHON to a Python that has them (see the Makefile's PYTHON_PACKAGES)"
            }
            return text
        case .timeout(let what): return "timed out waiting for \(what)"
        case .failed(let why, let logs): return "topology up failed (everything started was stopped; logs in \(logs)): \(why)"
        }
    }
}
