import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1.1 child channel with the PROXY header read first.
public struct ProxiedHTTP1Channel: ServerChildChannel {
    public typealias Value = HTTP1Channel.Value
    public let inner: HTTP1Channel
    public let callers: CallerRegistry

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(CallerDepartureHandler(callers: callers))
            try channel.pipeline.syncOperations.addHandler(ProxyHeaderHandler(callers: callers))
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension ProxiedHTTP1Channel {
    public init(callers: CallerRegistry, responder: @escaping HTTPChannelHandler.Responder) {
        self.init(inner: HTTP1Channel(responder: responder), callers: callers)
    }
}
