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

        func run() throws {
            if let maxCircuitsPerIdentity, maxCircuitsPerIdentity < 1 { throw ValidationError("--max-circuits-per-identity must be at least 1") }
            let config = ControllerConfig(network: network, apiAddress: try SocketAddress(parsing: api),
                                          controlAddress: try SocketAddress(parsing: control),
                                          limits: maxCircuitsPerIdentity.map { ControllerLimits(circuitsPerIdentity: $0) })
            let files = ControllerFiles(directory: state)
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
            let store = try Store(path: files.database)
            let policies = try PolicyState(store: store)
            let audit = AuditLog(store: store, key: secrets.auditKey)
            let pins = try ToolPins(store: store, audit: audit)
            let certificates = try CertificateRegistry(store: store)
            let metricsAddress = try metricsOptions.address()
            let loop = try EventLoop.startThread(name: "control")
            let plane = try await loop.submit {
                let plane = ControlPlane(loop: loop, policies: policies, secrets: secrets, audit: audit,
                                         records: SessionRecords(store: store), pins: pins, usage: UsageLedger(store: store),
                                         certificates: certificates, limits: config.limits ?? ControllerLimits())
                try plane.listen(on: controlListen)
                plane.reloadLinks(try store.read { try $0.all(LinkRow.self) })
                if let metricsAddress {
                    let metrics = try MetricsListener(loop: loop, address: metricsAddress, logger: ControllerLog.logger)
                    metrics.onScrape = { [unowned plane] in plane.updateMetrics() }
                    plane.metricsListener = metrics
                }
                return LoopBound(plane, loop: loop)
            }
            let api = ManagementAPI(store: store, policies: policies,
                                    enrollment: Enrollment(store: store, secrets: secrets, config: config, audit: audit, certificates: certificates),
                                    audit: audit, admins: AdminSessions(store: store), plane: plane, pins: pins,
                                    usage: UsageLedger(store: store), certificates: certificates)
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
            ControllerLog.logger.info("controller running", metadata: ["api": "\(apiListen)", "network": "\(config.network)"])
            try await app.runService()
            // Stopped (SIGTERM/SIGINT): keep what is queued for SQLite, then leave without tearing
            // down the control loop under its own callbacks.
            store.waitForBackgroundWrites()
            withExtendedLifetime(plane) { Foundation.exit(0) }
        }
    }
}
