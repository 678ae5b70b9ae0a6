import Foundation
import GatewayKit
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Shared

/// The LLM gateway's HTTP server on a private unix socket that only the hosting tunneler
/// connects to, each connection opened by a PROXY v2 header naming the caller.
public final class LLMGatewayServer: Sendable {
    public let gateway: LLMGateway
    public let socketPath: String
    private let task = Locked<Task<Void, Error>?>(nil)
    private let logger: Logger

    public init(gateway: LLMGateway, socketPath: String, logger: Logger) {
        self.gateway = gateway
        self.socketPath = socketPath
        self.logger = logger
    }

    public func start() async throws {
        try? FileManager.default.removeItem(atPath: socketPath)
        let callers = CallerRegistry()
        let handler = OpenAIHTTPHandler(gateway: gateway, callers: callers)
        let channel = ProxiedHTTP1Channel(callers: callers) { request, writer, channel in
            try await handler.respond(request, writer, channel)
        }
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let server = Server(childChannelSetup: channel, configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "portless-llm-gateway"),
                            onServerRunning: { _ in readyContinuation.yield(); readyContinuation.finish() },
                            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        gateway.start()
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
