import ArgumentParser
import Foundation
import Logging
import EdgeRouter
import Shared

@main
struct RouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portless-router",
        abstract: "A Portless edge router: verifies sessions and forwards end-to-end encrypted circuits.",
        subcommands: [Enroll.self, Run.self])

    struct Enroll: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enroll this router with a one-time token.")
        @Option(help: "The enrollment token (JWT), or @FILE to read it from a file.") var token: String
        @Option(help: "State directory for the router's key and certificate.") var state: String

        func run() throws {
            let jwt = try TokenArgument.read(token)
            let identity = try EnrolledIdentity.enroll(token: jwt, into: state)
            guard identity.kind == .router else { throw ValidationError("this token enrolls an identity, not a router") }
            print("Enrolled router '\(identity.name)' in \(state)")
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the router.")
        @Option(help: "State directory made by 'enroll'.") var state: String
        @Option(help: "Edge listener address for tunnelers (host:port).") var edge = "127.0.0.1:3022"
        @Option(help: "Link listener address for other routers (host:port); none if omitted.") var link: String?
        @OptionGroup var logging: LogOptions
        @OptionGroup var metricsOptions: MetricsOptions

        func run() throws {
            logging.bootstrap()
            ResourceLimits.raiseOpenFileLimit()
            let identity = try EnrolledIdentity(directory: state)
            let edgeAddress = try SocketAddress(parsing: edge)
            let linkAddress = try link.map(SocketAddress.init(parsing:))
            var logger = Logger(label: "portless.router")
            logger[metadataKey: "router"] = "\(identity.name)"
            let loop = try EventLoop()
            SignalHandling.stopOnTermination(loop)
            let metricsAddress = try metricsOptions.address()
            var node: RouterNode?
            var metrics: MetricsListener?
            try loop.run {
                let router = try RouterNode(identity: identity, loop: loop, edgeAddress: edgeAddress, linkAddress: linkAddress, logger: logger,
                                            stateDirectory: state)
                node = router
                if let metricsAddress {
                    metrics = try MetricsListener(loop: loop, address: metricsAddress, logger: logger)
                    metrics?.onScrape = { [unowned router] in router.updateMetrics() }
                }
            }
            withExtendedLifetime((node, metrics)) {}
        }
    }
}

