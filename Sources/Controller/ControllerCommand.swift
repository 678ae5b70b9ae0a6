import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import NIOSSL
import Logging
import Shared

@main
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portless-controller",
        abstract: "The Portless controller: identities, services, policies, PKI, signed sessions, audit.",
        subcommands: [Init.self, Run.self, DecisionBenchmark.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a network: CA, session-signing key, database, admin credential.")
        @Option(help: "State directory to create.") var state: String
        @Option(help: "Network name.") var network = "portless"
        @Option(help: "Management API address (host:port).") var api = "127.0.0.1:1280"
        @Option(help: "Control channel address for routers and tunnelers (host:port).") var control = "127.0.0.1:6262"
        @Option(help: "Circuits one identity may have open at once.") var maxCircuitsPerIdentity: Int?
        @Option(help: "Where to keep the network's state: 'sqlite' (a file in the state directory), a postgres:// URL, or @FILE holding one.")
        var store: String?
        @Option(help: "This controller's name among the network's controllers.") var name: String?
        @Option(help: "Add this controller to the network of the controller whose state directory (or a copy of its secrets) is here; both use the PostgreSQL --store.")
        var join: String?

        func run() throws {
            if let maxCircuitsPerIdentity, maxCircuitsPerIdentity < 1 { throw ValidationError("--max-circuits-per-identity must be at least 1") }
            if let name { try Validation.name(name, kind: "controller") }
            let files = ControllerFiles(directory: state)
            if let join {
                let existing = ControllerFiles(directory: join)
                let joined = try Files.readJSON(ControllerConfig.self, from: existing.config)
                let config = ControllerConfig(network: joined.network, apiAddress: try SocketAddress(parsing: api),
                                              controlAddress: try SocketAddress(parsing: control), limits: joined.limits,
                                              name: name ?? "controller-\(UUID().uuidString.prefix(6).lowercased())", store: store ?? joined.store)
                try ControllerSecrets.join(files: files, config: config, existing: existing)
                print("Controller '\(config.name ?? "")' joined network '\(joined.network)' in \(state)")
                print("  management API  \(config.apiURL)")
                print("  control channel \(config.controlAddress)")
                return
            }
            let config = ControllerConfig(network: network, apiAddress: try SocketAddress(parsing: api),
                                          controlAddress: try SocketAddress(parsing: control),
                                          limits: maxCircuitsPerIdentity.map { ControllerLimits(circuitsPerIdentity: $0) },
                                          name: name, store: store)
            _ = try ControllerSecrets.initialize(files: files, config: config)
            print("Initialized network '\(network)' in \(state)")
            print("  management API  \(config.apiURL)")
            print("  control channel \(config.controlAddress)")
            print("  admin credential \(files.adminCredential) (keep it secret)")
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the controller.")
        @Option(help: "State directory made by 'init'.") var state: String
        @Option(help: "Listen for the management API here instead of the configured address (the address in tokens stays the configured one); used to provision a bundle.")
        var bindApi: String?
        @Option(help: "Listen for the control channel here instead of the configured address.")
        var bindControl: String?
        @Option(help: "Use this store instead of the configured one: a postgres:// URL or @FILE holding one (e.g. a systemd credential).")
        var store: String?
        @OptionGroup var logging: LogOptions
        @OptionGroup var metricsOptions: MetricsOptions

        func run() async throws {
            logging.bootstrap()
            ResourceLimits.raiseOpenFileLimit()
            let files = ControllerFiles(directory: state)
            let config = try Files.readJSON(ControllerConfig.self, from: files.config)
            let apiListen = try bindApi.map(SocketAddress.init(parsing:)) ?? config.apiAddress
            let controlListen = try bindControl.map(SocketAddress.init(parsing:)) ?? config.controlAddress
            let secrets = try ControllerSecrets(files: files)
            let store = try Store(try config.storeLocation(files: files, override: self.store))
            let name = config.name ?? "controller"
            // Routers and tunnelers are told every controller of the network, this one included.
            let controllers = try store.write { db in
                try db.save(ControllerRow(name: name, controlAddress: config.controlAddress.description, apiAddress: config.apiURL, startedAt: Date()))
                return try db.all(ControllerRow.self, orderBy: "name")
            }
            let changes = StoreChanges(store: store, origin: "\(name)/\(randomToken(bytes: 6))")
            // The others tell their routers and tunnelers about this one.
            changes.announce("controllers")
            let policies = try PolicyState(store: store)
            let audit = AuditLog(store: store, key: secrets.auditKey)
            let pins = try ToolPins(store: store, audit: audit)
            let certificates = try CertificateRegistry(store: store)
            let metricsAddress = try metricsOptions.address()
            let loop = try EventLoop.startThread(name: "control")
            let plane = try await loop.submit {
                let plane = ControlPlane(loop: loop, policies: policies, secrets: secrets, audit: audit,
                                         records: SessionRecords(store: store), pins: pins, usage: UsageLedger(store: store),
                                         certificates: certificates, limits: config.limits ?? ControllerLimits(),
                                         circuitSlot: UInt64(controllers.firstIndex { $0.name == name } ?? 0))
                plane.changes = changes
                plane.setControllers(controllers)
                try plane.listen(on: controlListen)
                plane.reloadLinks(try store.read { try $0.all(LinkRow.self) })
                if let metricsAddress {
                    let metrics = try MetricsListener(loop: loop, address: metricsAddress, logger: ControllerLog.logger)
                    metrics.onScrape = { [unowned plane] in plane.updateMetrics() }
                    plane.metricsListener = metrics
                }
                return LoopBound(plane, loop: loop)
            }
            // Another controller changed the shared state: read it again off the loop, apply it on the loop.
            // Announcements that arrive while one read is waiting are served by that read.
            let resync = DispatchQueue(label: "portless.controller.resync")
            let records = SessionRecords(store: store)
            let queued = Locked(false)
            changes.listen { topic in
                guard queued.withLock({ (already: inout Bool) -> Bool in defer { already = true }; return !already }) else { return }
                resync.async {
                    queued.withLock { $0 = false }
                    do {
                        let shared = try ControlPlane.readSharedState(store: store, policies: policies, certificates: certificates,
                                                                      pins: pins, records: records)
                        plane.loop.execute { plane.value.apply(shared, reason: "changed through another controller (\(topic))") }
                    } catch {
                        ControllerLog.logger.error("could not read what another controller changed", metadata: ["error": "\(error)"])
                    }
                }
            }
            let api = ManagementAPI(store: store, policies: policies,
                                    enrollment: Enrollment(store: store, secrets: secrets, config: config, audit: audit, certificates: certificates),
                                    audit: audit, admins: AdminSessions(store: store), plane: plane, pins: pins,
                                    usage: UsageLedger(store: store), certificates: certificates, changes: changes,
                                    controllerName: name)
            let router = Router()
            api.register(on: router)
            // TLS only, with the controller's certificate: clients pin the network CA and require
            // a certificate it issued to the controller. Plain HTTP is not offered.
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array((secrets.controlCredentials.certificatePEM + "\n" + secrets.caPEM).utf8))
                    .map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(secrets.controlCredentials.privateKeyPEM.utf8), format: .pem)))
            tls.minimumTLSVersion = .tlsv12
            let app = Application(router: router, server: try .tls(.http1(), tlsConfiguration: tls),
                                  configuration: .init(address: .hostname(apiListen.host, port: apiListen.port),
                                                       serverName: "portless-controller"),
                                  logger: Logger(label: "portless.controller.api"))
            ControllerLog.logger.info("controller running", metadata: ["api": "\(apiListen)", "network": "\(config.network)", "name": "\(name)",
                                                                   "store": "\(store.dialect == .postgres ? "postgresql" : "sqlite")"])
            try await app.runService()
            // Stopped (SIGTERM/SIGINT): keep what is queued for SQLite, then leave without tearing
            // down the control loop under its own callbacks.
            changes.stop()
            store.close()
            withExtendedLifetime(plane) { Foundation.exit(0) }
        }
    }
}
