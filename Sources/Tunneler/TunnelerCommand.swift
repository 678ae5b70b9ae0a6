import ArgumentParser
import Foundation
import GatewayKit
import Logging
import Shared

@main
struct TunnelerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portless-tunnel",
        abstract: "A Portless tunneler: intercepts and hosts services over outbound connections only.",
        subcommands: [Enroll.self, Run.self, MCPStdio.self])

    struct Enroll: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enroll an identity with a one-time token.")
        @Option(help: "The enrollment token (JWT), or @FILE to read it from a file.") var token: String
        @Option(help: "Directory for the identity's key and certificate.") var state: String

        func run() throws {
            let identity = try EnrolledIdentity.enroll(token: try TokenArgument.read(token), into: state)
            guard identity.kind == .identity else { throw ValidationError("this token enrolls a router, not an identity") }
            print("Enrolled identity '\(identity.name)' in \(state)")
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the tunneler.")
        @Option(help: "Tunneler config file (YAML or JSON).") var config: String
        @OptionGroup var logging: LogOptions
        @OptionGroup var metricsOptions: MetricsOptions
        @Option(help: "Send OpenTelemetry spans (OTLP/HTTP, JSON) to this collector base URL; default: $OTEL_EXPORTER_OTLP_ENDPOINT, else none.")
        var otlpEndpoint: String?

        func run() throws {
            logging.bootstrap()
            ResourceLimits.raiseOpenFileLimit()
            var settings = try TunnelerConfig.load(config)
            try settings.validate()
            let identity = try EnrolledIdentity(directory: settings.identity)
            var logger = Logger(label: "portless.tunnel")
            logger[metadataKey: "identity"] = "\(identity.name)"
            Tracing.configure(endpoint: otlpEndpoint, serviceName: "portless-tunnel", identity: identity.name, logger: logger)
            let gateways = try HostedGateways.start(hosts: &settings, identity: identity, logger: logger)
            let loop = try EventLoop()
            SignalHandling.stopOnTermination(loop)
            let metricsAddress = try metricsOptions.address()
            var tunnel: Tunnel?
            var metrics: MetricsListener?
            try loop.run {
                let running = try Tunnel(config: settings, identity: identity, loop: loop, logger: logger)
                if let metricsAddress {
                    metrics = try MetricsListener(loop: loop, address: metricsAddress, logger: logger)
                    metrics?.onScrape = { [unowned running] in running.updateMetrics() }
                }
                running.hostReady = { gateways.isReady($0) }
                running.assertionKey = gateways.assertions?.publicJWK
                let bound = LoopBound(running, loop: loop)
                gateways.whenReady { bound.loop.execute { bound.value.bindReadyHosts() } }
                gateways.attach(LoopBound(running.controller, loop: loop))
                tunnel = running
            }
            gateways.stop()
            withExtendedLifetime((tunnel, metrics)) {}
        }
    }

    struct MCPStdio: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mcp-stdio",
            abstract: "Serve an MCP gateway service on stdin/stdout, over the overlay (for desktop MCP clients).")
        @Option(help: "The enrolled identity directory (what 'enroll --state' wrote).") var identity: String
        @Option(help: "The MCP gateway's service name.") var service: String
        @Option(help: "A file holding the token of the person the client's agent acts for (from their identity provider); read for every request.")
        var onBehalfOf: String?
        @OptionGroup var logging: LogOptions

        func run() throws {
            logging.bootstrap()
            let enrolled = try EnrolledIdentity(directory: identity)
            var logger = Logger(label: "portless.mcp-stdio")
            logger[metadataKey: "identity"] = "\(enrolled.name)"
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portless-mcp-\(getpid())").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let socket = directory + "/gateway.sock"
            let loop = try EventLoop()
            SignalHandling.stopOnTermination(loop)
            var tunnel: Tunnel?
            let bridge = MCPStdioBridge(socketPath: socket, onBehalfOf: onBehalfOf, logger: logger)
            try loop.run {
                let running = try Tunnel(config: TunnelerConfig(identity: identity, intercepts: nil, hosts: nil), identity: enrolled, loop: loop, logger: logger)
                try running.interceptPrivately(service, path: socket)
                tunnel = running
                bridge.run { loop.execute { loop.stop() } }
            }
            withExtendedLifetime(tunnel) {}
        }
    }
}
