import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import GatewayKit
import Shared

/// The gateway's HTTP server on a private unix socket that only the hosting tunneler connects
/// to, each connection starting with a PROXY v2 header that names the caller.
public final class MCPGatewayServer: Sendable {
    public let gateway: MCPGateway
    public let socketPath: String
    private let task = Locked<Task<Void, Error>?>(nil)
    private let logger: Logger

    public init(gateway: MCPGateway, socketPath: String, logger: Logger) {
        self.gateway = gateway
        self.socketPath = socketPath
        self.logger = logger
    }

    /// Starts serving; returns once the socket accepts connections.
    public func start() async throws {
        try? FileManager.default.removeItem(atPath: socketPath)
        let callers = CallerRegistry()
        let handler = StreamableHTTPHandler(gateway: gateway, callers: callers, allowedOrigins: gateway.config.allowedOrigins ?? [])
        let channel = ProxiedHTTP1Channel(callers: callers) { request, writer, channel in
            try await handler.respond(request, writer, channel)
        }
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let server = Server(childChannelSetup: channel, configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "portless-mcp-gateway"),
                            onServerRunning: { _ in readyContinuation.yield(); readyContinuation.finish() },
                            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        await gateway.start()
        let running = Task {
            defer { readyContinuation.finish() }
            try await server.run()
        }
        task.withLock { $0 = running }
        for await _ in ready { return }
        if case .failure(let error) = await running.result { throw error }
    }

    public func stop() async {
        task.withLock { $0 }?.cancel()
        await gateway.stop()
        try? FileManager.default.removeItem(atPath: socketPath)
    }
}
