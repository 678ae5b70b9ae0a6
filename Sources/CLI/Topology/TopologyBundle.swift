import Foundation
import Shared

/// `topology bundle FILE --out DIR`: one directory per host of the file, ready to copy to that
/// machine — its processes' configs, their one-time enrollment tokens, systemd units and a short
/// README. The controller's bundle carries the network it provisioned (CA, database, admin
/// credential): bundle provisions it by running the controller briefly on loopback.
struct TopologyBundle {
    let topology: TopologyFile
    let out: String
    let binaries: String

    static let stateRoot = "/var/lib/portless"
    static let configRoot = "/etc/portless"
    static let binRoot = "/usr/local/bin"
    /// Prometheus endpoints on each host's loopback: the controller here, routers from +10, tunnelers from +100.
    static let metricsPort = 9400

    init(topology: TopologyFile, out: String) {
        self.topology = topology
        self.out = out
        binaries = ProcessLauncher.binaryDirectory
    }

    func write() async throws -> [String] {
        guard let hosts = topology.hosts, !hosts.isEmpty else { throw NamespaceError.noHosts }
        var addresses: [String: String] = [:]
        for host in hosts {
            guard let address = host.address, (try? SocketAddress(parsing: "\(address):1")) != nil else {
                throw BundleError.hostAddress(host.name)
            }
            addresses[host.name] = address
        }
        guard !FileManager.default.fileExists(atPath: out) else { throw BundleError.outputExists(out) }
        let hostOf = { (name: String?) in name ?? hosts[0].name }
        var units: [String: [String]] = [:]
        func add(_ host: String, _ file: String, _ text: String, privateFile: Bool = false) throws {
            let path = "\(out)/\(host)/\(file)"
            try Files.createDirectory((path as NSString).deletingLastPathComponent)
            try Files.write(text, to: path, privateFile: privateFile)
        }

        // The controllers; the first is provisioned with every resource of the file. On
        // PostgreSQL that happens in a cluster of the bundle's own, dumped for the operator's.
        let controllers = topology.allControllers
        let controllerHost = hostOf(controllers[0].host)
        let api = "\(addresses[controllerHost] ?? ""):\(controllers[0].api?.port ?? 1280)"
        var provisioningPostgres: LocalPostgres?
        var store: [String] = []
        if topology.usesPostgres {
            let postgres = LocalPostgres(directory: out + "/.provisioning-postgres")
            try postgres.start()
            provisioningPostgres = postgres
            store = ["--store", postgres.url]
        }
        defer {
            if let provisioningPostgres {
                try? provisioningPostgres.stop()
                try? FileManager.default.removeItem(atPath: provisioningPostgres.directory)
                try? FileManager.default.removeItem(atPath: provisioningPostgres.socketDirectory)
            }
        }
        var controllerStates: [String] = []
        for (index, entry) in controllers.enumerated() {
            let name = entry.name ?? "controller"
            let host = hostOf(entry.host)
            let ip = addresses[host] ?? ""
            let directory = index == 0 ? "controller" : "controllers/\(name)"
            let state = "\(out)/\(host)/\(directory)"
            let ports = [entry.api?.port ?? 1280 + 10 * index, entry.control?.port ?? 6262 + 10 * index]
            try Files.createDirectory("\(out)/\(host)")
            try run("portless-controller", ["init", "--state", state, "--network", topology.network ?? "portless", "--name", name,
                                            "--api", "\(ip):\(ports[0])", "--control", "\(ip):\(ports[1])"] + store
                                            + (index == 0 ? [] : ["--join", controllerStates[0]]))
            controllerStates.append(state)
            let unitName = index == 0 ? "portless-controller" : "portless-controller-\(name)"
            let credentials = topology.usesPostgres ? [("store.url", "\(Self.configRoot)/store.url")] : []
            try add(host, "\(unitName).service", unit("Portless controller \(name)", state: "\(Self.stateRoot)/\(directory)",
                credentials: credentials,
                exec: "\(Self.binRoot)/portless-controller run --state \(Self.stateRoot)/\(directory) --metrics 127.0.0.1:\(Self.metricsPort + index)"
                    + (topology.usesPostgres ? " --store @%d/store.url" : ""),
                bindsPrivilegedPort: ports.contains { $0 < 1024 }))
            units[host, default: []].append("\(unitName).service (copy \(directory)/ to \(Self.stateRoot)/\(directory))")
        }
        let outcome = try await provision(controllerStates[0])
        if let provisioningPostgres {
            try provisioningPostgres.dump(to: "\(out)/\(controllerHost)/portless.sql")
            // The URL comes from the operator's credential file on each host, not from the bundle.
            for state in controllerStates { try Self.forgetStore(in: state + "/controller.json") }
        }

        for (index, router) in topology.routers.enumerated() {
            let host = hostOf(router.host)
            let ip = addresses[host] ?? ""
            guard let token = outcome.routerTokens[router.name] else { throw BundleError.noToken(router.name) }
            try add(host, "routers/\(router.name)/enroll.jwt", token, privateFile: true)
            let state = "\(Self.stateRoot)/routers/\(router.name)"
            let edge = "\(ip):\(router.edge?.port ?? 3022 + 2 * index)"
            let link = "\(ip):\(router.link?.port ?? 3023 + 2 * index)"
            let ports = [router.edge?.port ?? 3022 + 2 * index, router.link?.port ?? 3023 + 2 * index]
            try add(host, "portless-router-\(router.name).service", unit("Portless edge router \(router.name)", state: state,
                token: "\(Self.configRoot)/routers/\(router.name)/enroll.jwt",
                enroll: "\(Self.binRoot)/portless-router enroll --token @%d/enroll.jwt --state \(state)",
                enrolledFile: "\(state)/identity.json",
                exec: "\(Self.binRoot)/portless-router run --state \(state) --edge \(edge) --link \(link) --metrics 127.0.0.1:\(Self.metricsPort + 10 + index)",
                bindsPrivilegedPort: ports.contains { $0 < 1024 }))
            units[host, default: []].append("portless-router-\(router.name).service (edge \(edge), link \(link); copy routers/ to \(Self.configRoot)/routers)")
        }

        var appPorts: [String: Int] = [:]
        for (index, app) in (topology.apps ?? []).enumerated() {
            let host = hostOf(app.host)
            let port = 18_000 + index
            appPorts[app.name] = port
            var argv = app.command.map {
                $0.replacingOccurrences(of: "{port}", with: String(port)).replacingOccurrences(of: "{python}", with: "python3")
                    .replacingOccurrences(of: "{topology}", with: Self.configRoot)
            }
            if let first = argv.first, first.hasPrefix("portless") { argv[0] = "\(Self.binRoot)/\(first)" }
            try add(host, "\(app.name).service", unit("\(app.name) (served through Portless)", state: "\(Self.stateRoot)/apps/\(app.name)",
                                                       exec: argv.joined(separator: " ")))
            units[host, default: []].append("\(app.name).service (127.0.0.1:\(port))")
        }

        for (index, tunneler) in (topology.tunnelers ?? []).enumerated() {
            let host = hostOf(tunneler.host)
            let name = tunneler.processName
            guard let token = outcome.identityTokens[tunneler.identity] else { throw BundleError.noToken(tunneler.identity) }
            try add(host, "tunnelers/\(name)/enroll.jwt", token, privateFile: true)
            let state = "\(Self.stateRoot)/tunnelers/\(name)"
            var lines = ["identity: \(state)/identity"]
            let intercepts = tunneler.intercepts ?? []
            if !intercepts.isEmpty { lines.append("intercepts:") }
            for (offset, intercept) in intercepts.enumerated() {
                let listen = intercept.listen.map { $0.port == 0 ? "\($0.host):\(9_000 + 10 * index + offset)" : $0.description }
                    ?? "127.0.0.1:\(9_000 + 10 * index + offset)"
                lines += ["  - service: \(intercept.service)", "    listen: \(listen)"]
            }
            let hostEntries = tunneler.hosts ?? []
            if !hostEntries.isEmpty { lines.append("hosts:") }
            for entry in hostEntries {
                lines.append("  - service: \(entry.service)")
                if let address = entry.address?.description ?? entry.app.flatMap({ appPorts[$0] }).map({ "127.0.0.1:\($0)" }) {
                    lines.append("    address: \(address)")
                }
                if entry.proxy_protocol == true { lines.append("    proxy_protocol: true") }
                // Gateway fields as JSON (valid YAML); MCP server scripts go in the config directory.
                let fill = { (text: String) in
                    text.replacingOccurrences(of: "{python}", with: "python3").replacingOccurrences(of: "{topology}", with: Self.configRoot)
                        .replacingOccurrences(of: "{state}", with: state)
                }
                for (key, value) in GatewayUpstreams.hostFields(entry, appAddress: { appPorts[$0].map { "127.0.0.1:\($0)" } }, fill: fill)
                    .sorted(by: { $0.key < $1.key }) {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    let json = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
                    lines.append("    \(key): \(json)")
                }
                if let precedence = entry.precedence { lines.append("    precedence: \(precedence.rawValue)") }
                if let cost = entry.cost { lines.append("    cost: \(cost)") }
            }
            try add(host, "tunnelers/\(name)/tunnel.yaml", lines.joined(separator: "\n") + "\n")
            try add(host, "portless-tunnel-\(name).service", unit("Portless tunneler \(name)", state: state,
                token: "\(Self.configRoot)/tunnelers/\(name)/enroll.jwt",
                enroll: "\(Self.binRoot)/portless-tunnel enroll --token @%d/enroll.jwt --state \(state)/identity",
                enrolledFile: "\(state)/identity/identity.json",
                exec: "\(Self.binRoot)/portless-tunnel run --config \(Self.configRoot)/tunnelers/\(name)/tunnel.yaml --metrics 127.0.0.1:\(Self.metricsPort + 100 + index)",
                bindsPrivilegedPort: intercepts.contains { (1..<1024).contains($0.listen?.port ?? 0) }))
            units[host, default: []].append("portless-tunnel-\(name).service (outbound only; copy tunnelers/ to \(Self.configRoot)/tunnelers)")
        }

        var summary: [String] = []
        for host in hosts {
            let list = units[host.name] ?? []
            try add(host.name, "README.md", readme(host, units: list, controllerHost: controllerHost, api: api))
            summary.append("\(out)/\(host.name): \(list.count) unit(s)")
        }
        return summary
    }

    /// Runs the new controller on loopback long enough to create every resource of the file.
    private func provision(_ state: String) async throws -> ResourceReconciler.Outcome {
        let api = SocketAddress(host: "127.0.0.1", port: try FreePort.pick())
        let control = SocketAddress(host: "127.0.0.1", port: try FreePort.pick())
        let log = out + "/provisioning.log"
        let pid = try ProcessLauncher.spawn([binaries + "/portless-controller", "run", "--state", state,
                                             "--bind-api", api.description, "--bind-control", control.description], log: log)
        defer { ProcessLauncher.stop([pid]) }
        let deadline = Date().addingTimeInterval(30)
        while !FreePort.accepts(api) {
            guard Date() < deadline, ProcessLauncher.isAlive(pid) else { throw DeployError.processDied("controller", log: log, tail: TopologyDeployer.tail(log)) }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        let credential = try Files.readJSON([String: String].self, from: state + "/admin.json")
        let caPEM = try Files.read(state + "/ca.pem")
        let session = try await ManagementClient.login(controller: "https://\(api)", caPEM: caPEM, username: "admin", password: credential["password"] ?? "")
        return try await ResourceReconciler(topology: topology, client: ManagementClient(baseURL: "https://\(api)", token: session.token, caPEM: caPEM)).reconcile()
    }

    /// Drops the provisioning database's URL from a controller's config.
    private static func forgetStore(in path: String) throws {
        guard var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] else { return }
        config.removeValue(forKey: "store")
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
    }

    private func run(_ program: String, _ arguments: [String]) throws {
        let result = try ProcessLauncher.run([binaries + "/" + program] + arguments)
        guard result.status == 0 else { throw DeployError.step(program, result.output) }
    }

    /// A unit that runs as its own dynamic user in a sandbox (`systemd-analyze security` rates it
    /// "OK"): it writes only to its `StateDirectory=` under /var/lib/portless, holds no capability
    /// (a router binding a port below 1024 keeps `CAP_NET_BIND_SERVICE` alone), and reaches its
    /// one-time enrollment token, a root-only file, as a systemd credential (`%d`).
    private func unit(_ description: String, state: String, token: String? = nil, enroll: String? = nil, enrolledFile: String? = nil,
                      credentials: [(name: String, path: String)] = [], exec: String, bindsPrivilegedPort: Bool = false) -> String {
        precondition(state.hasPrefix(Self.stateRoot + "/"), "units keep their state under \(Self.stateRoot)")
        var lines = ["[Unit]", "Description=\(description)", "After=network-online.target", "Wants=network-online.target", "",
                     "[Service]",
                     "DynamicUser=yes",
                     "StateDirectory=\(state.dropFirst("/var/lib/".count))",
                     "StateDirectoryMode=0700",
                     "WorkingDirectory=\(state)",
                     "UMask=0077"]
        // Secrets the process reads as systemd credentials (root-only files on the host).
        for credential in credentials { lines.append("LoadCredential=\(credential.name):\(credential.path)") }
        if let token, let enroll, let enrolledFile {
            // Enrolls once, on first start: the key is made on this machine and never leaves it.
            lines.append("LoadCredential=enroll.jwt:\(token)")
            lines.append("ExecStartPre=/bin/sh -c 'test -f \(enrolledFile) || \(enroll)'")
        }
        lines += ["ExecStart=\(exec)", "Restart=always", "RestartSec=2", "LimitNOFILE=65536"]
        lines += ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
                  "PrivateMounts=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
                  "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes", "ProtectProc=invisible", "ProcSubset=pid",
                  "RestrictNamespaces=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes",
                  "MemoryDenyWriteExecute=yes", "RemoveIPC=yes", "DevicePolicy=closed", "KeyringMode=private",
                  "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                  "SystemCallArchitectures=native", "SystemCallFilter=@system-service", "SystemCallFilter=~@privileged",
                  "SystemCallErrorNumber=EPERM"]
        if bindsPrivilegedPort {
            // A user namespace would take the capability's meaning away in the host's network.
            lines += ["CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE"]
        } else {
            lines += ["CapabilityBoundingSet=", "AmbientCapabilities=", "PrivateUsers=yes"]
        }
        lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
        return lines.joined(separator: "\n")
    }

    private func readme(_ host: TopologyFile.NetworkHost, units: [String], controllerHost: String, api: String) -> String {
        let controllersHere = topology.usesPostgres && topology.allControllers.contains { ($0.host ?? topology.hosts?.first?.name) == host.name }
        let database = !controllersHere ? "" : """

        The controllers keep their state in PostgreSQL (version 13 or later), which you run. Put the database's URL —
        `postgres://USER:PASSWORD@HOST:5432/DATABASE?sslmode=require` — in \(Self.configRoot)/store.url, readable by root
        alone (`chmod 600`): each controller unit reads it as a systemd credential, so it is never in a unit file or a
        process list. \(host.name == controllerHost ? "Once, before the first start, load the provisioned network into that database: `psql \"$(cat \(Self.configRoot)/store.url)\" -f portless.sql`." : "Load `portless.sql` (in the bundle of `\(controllerHost)`) into it first.")

        """
        return """
        # Portless bundle for host `\(host.name)`\(host.enterprise == true ? " (enterprise: allow no inbound connections)" : "")

        Install the binaries (`portless-controller`, `portless-router`, `portless-tunnel`, `portless`) in \(Self.binRoot),
        copy this directory's `routers/` and `tunnelers/` (if present) to \(Self.configRoot)/, the unit files to
        /etc/systemd/system/, then `systemctl daemon-reload && systemctl enable --now <unit>` for each unit:

        \(units.map { "- \($0)" }.joined(separator: "\n"))

        Enrollment tokens (`enroll.jwt`) are single-use and expire in 24 hours: each unit enrolls on its first
        start, creating its private key on this machine. Keep them where they are, readable by root alone: a unit
        reads its token as a systemd credential. Every unit runs as its own dynamic user in a sandbox that may write
        only to its state directory under \(Self.stateRoot) (systemd creates it, and takes over a directory copied
        there before the first start); check one with `systemd-analyze security <unit>`. Each Portless process serves
        Prometheus metrics on this host's loopback (the port is in its unit's `--metrics`). The controller (on `\(controllerHost)`, API \(api)) must
        be running first. Tunnelers only dial out: \(host.enterprise == true ? "this host needs no inbound port at all." : "open no port for them.")
        \(database)
        """
    }
}

enum BundleError: Error, CustomStringConvertible {
    case hostAddress(String)
    case outputExists(String)
    case noToken(String)

    var description: String {
        switch self {
        case .hostAddress(let host): return "host '\(host)' needs an 'address:' (an IP address other hosts reach it at) for a bundle"
        case .outputExists(let out): return "\(out) already exists; bundle writes a new directory"
        case .noToken(let name): return "no enrollment token was issued for '\(name)'"
        }
    }
}
