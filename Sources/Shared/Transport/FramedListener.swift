import Logging

/// Accepts TLS connections and wraps each in a `FramedChannel`.
public final class FramedListener {
    private var listener: TCPListener?
    public let localAddress: SocketAddress

    public init(loop: EventLoop, address: SocketAddress, context: TLSContext,
                maxFrame: Int = TransportLimits.defaultMaxFrame, logger: Logger,
                onChannel: @escaping (FramedChannel) -> Void) throws {
        let listener = try TCPListener(loop: loop, address: address) { tcp in
            do {
                onChannel(try FramedChannel.accept(tcp, context: context, maxFrame: maxFrame))
            } catch {
                logger.warning("refused connection", metadata: ["reason": "\(error)"])
                tcp.close()
            }
        }
        self.listener = listener
        self.localAddress = listener.localAddress
    }

    public func close() {
        listener?.close()
        listener = nil
    }
}
