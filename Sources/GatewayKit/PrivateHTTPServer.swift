import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Shared

/// A gateway's HTTP server on a private unix socket that only the hosting tunneler connects to,
/// each connection opened by a PROXY v2 header naming the caller (see `callers`).
public final class PrivateHTTPServer: Sendable {
    public let socketPath: String
    public let callers = CallerRegistry()
    private let serverName: String
    private let logger: Logger
    private let task = Locked<Task<Void, Error>?>(nil)

    public init(socketPath: String, serverName: String, logger: Logger) {
        self.socketPath = socketPath
        self.serverName = serverName
        self.logger = logger
    }

    /// Starts serving; returns once the socket accepts connections.
    public func start(_ responder: @escaping HTTPChannelHandler.Responder) async throws {
        try? FileManager.default.removeItem(atPath: socketPath)
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let server = Server(childChannelSetup: ProxiedHTTP1Channel(callers: callers, responder: responder),
                            configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: serverName),
                            onServerRunning: { _ in readyContinuation.yield(); readyContinuation.finish() },
                            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let running = Task {
            defer { readyContinuation.finish() }
            try await server.run()
        }
        task.withLock { $0 = running }
        for await _ in ready { return }
        if case .failure(let error) = await running.result { throw error }
    }

    public func stop() {
        task.withLock { $0 }?.cancel()
        try? FileManager.default.removeItem(atPath: socketPath)
    }
}
