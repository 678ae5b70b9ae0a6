import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Shared

/// A gateway's HTTP/1.1 server on a private unix socket that only the hosting tunneler connects
/// to, each connection opened by a PROXY v2 header naming the caller (see `callers`).
///
/// Plain NIO handlers from the socket to the responder: the PROXY header, HTTP/1.1 decoding and
/// encoding, and `GatewayHTTPHandler`, which keeps requests in order and hands each whole one to
/// the gateway's responder. The responder runs on the connection's event loop when `affinity` is
/// set (`EventLoopExecutor`), else on Swift Concurrency's pool.
public final class PrivateHTTPServer: Sendable {
    public typealias Responder = @Sendable (GatewayRequest, GatewayResponseWriter, any Channel) async throws -> Void

    public let socketPath: String
    public let callers = CallerRegistry()
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let maxBody: Int
    private let affinity: Bool
    private let channel = Locked<(any Channel)?>(nil)

    /// `maxBody`: the largest request body kept (a larger one reaches the responder as too large);
    /// `eventLoopGroup`: where connections live.
    public init(socketPath: String, maxBody: Int, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                affinity: Bool = true, logger: Logger) {
        self.socketPath = socketPath
        self.maxBody = maxBody
        self.eventLoopGroup = eventLoopGroup
        self.affinity = affinity
        self.logger = logger
    }

    /// Starts serving; returns once the socket accepts connections.
    public func start(_ responder: @escaping Responder) async throws {
        try? FileManager.default.removeItem(atPath: socketPath)
        let callers = self.callers
        let maxBody = self.maxBody
        let affinity = self.affinity
        let server = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(CallerDepartureHandler(callers: callers))
                    try pipeline.addHandler(ProxyHeaderHandler(callers: callers))
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try pipeline.addHandler(GatewayHTTPHandler(responder: responder, maxBody: maxBody,
                                                               executor: affinity ? EventLoopExecutor(channel.eventLoop) : nil))
                }
            }
            .bind(unixDomainSocketPath: socketPath)
            .get()
        channel.withLock { $0 = server }
    }

    public func stop() {
        channel.withLock { $0 }?.close(promise: nil)
        try? FileManager.default.removeItem(atPath: socketPath)
    }
}
