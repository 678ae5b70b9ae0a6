import NIOCore
import Shared

/// Reads the PROXY protocol v2 header the hosting tunneler writes first on every connection to
/// the gateway's private socket, records the caller it names, and then steps out of the way.
public final class ProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    private var buffered: ByteBuffer?
    private let callers: CallerRegistry

    public init(callers: CallerRegistry) { self.callers = callers }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var pending = buffered {
            pending.writeBuffer(&bytes)
            bytes = pending
        }
        switch ProxyProtocol.parse(bytes.readableBytesView) {
        case .needMore:
            guard bytes.readableBytes < ProxyProtocol.maxHeader else { return context.close(promise: nil) }
            buffered = bytes
        case .header(let caller, let length):
            if let identity = caller.identity {
                callers.set(Caller(identity: identity, circuit: caller.circuitID), for: context.channel)
            }
            bytes.moveReaderIndex(forwardBy: length)
            finish(context: context, rest: bytes)
        case .absent:
            finish(context: context, rest: bytes)
        case .invalid:
            context.close(promise: nil)
        }
    }

    private func finish(context: ChannelHandlerContext, rest: ByteBuffer) {
        buffered = nil
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Connection → the caller its PROXY header named. Entries leave when the connection closes.
public final class CallerRegistry: Sendable {
    public init() {}
    private let callers = Locked<[ObjectIdentifier: Caller]>([:])

    public func set(_ caller: Caller, for channel: any Channel) {
        let key = ObjectIdentifier(channel)
        callers.withLock { $0[key] = caller }
        channel.closeFuture.whenComplete { [weak self] _ in self?.callers.withLock { _ = $0.removeValue(forKey: key) } }
    }

    public func caller(of channel: any Channel) -> Caller? {
        callers.withLock { $0[ObjectIdentifier(channel)] }
    }
}
