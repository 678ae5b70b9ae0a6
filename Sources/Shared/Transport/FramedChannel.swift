import CLibUV
import Foundation
import Logging

/// Frames over mutually authenticated TLS over TCP. Loop-confined.
///
/// - Bytes read from the socket feed the TLS engine; decrypted bytes collect in one inbound
///   buffer, from which frames are decoded in place and handed to `onFrame` (the views are valid
///   only during the call). Nothing is allocated per frame.
/// - A frame larger than `maxFrame`, bad magic, or a failed handshake closes this connection,
///   with the reason, and nothing else.
/// - It is always read: heartbeats (liveness) never wait behind data. Backpressure is per
///   circuit, above this type (windows end to end, per-circuit queues in routers).
/// - Heartbeats every `heartbeatIntervalMs`; silence for `heartbeatMissesAllowed` periods closes.
/// - Until the peer is authenticated it holds only small buffers (`preAuthenticationBuffer`);
///   a peer that lets more than `maxQueuedBytes` queue without reading is disconnected.
public final class FramedChannel {
    public let loop: EventLoop
    public let maxFrame: Int
    private let tcp: StreamConnection
    private let tls: TLSEngine
    private var inbound: UnsafeMutableRawBufferPointer
    private var inboundStart = 0
    private var inboundEnd = 0
    private var outbound: UnsafeMutableRawBufferPointer
    private var cipherScratch: UnsafeMutableRawBufferPointer
    private var heartbeat: LoopTimer?
    private var lastHeard: UInt64 = 0
    private var processing = false
    /// An open channel keeps itself alive (as libuv handles do); `close()` lets it go.
    private var keepAlive: FramedChannel?
    public private(set) var isClosed = false
    public private(set) var peer: PeerIdentity?
    public let remoteAddress: SocketAddress?

    /// After the TLS handshake: the CA-verified peer.
    public var onReady: ((PeerIdentity) -> Void)?
    public var onFrame: ((FrameView) -> Void)?
    public var onClose: ((Error?) -> Void)?
    /// The write queue drained below the low-water mark.
    public var onWritable: (() -> Void)?
    /// Round trip measured by a heartbeat, in milliseconds.
    public var onRoundTrip: ((Double) -> Void)?
    /// Heartbeat period; links between routers probe more often to measure latency. Set it
    /// before the handshake completes.
    public var heartbeatIntervalMs = TransportLimits.heartbeatIntervalMs

    init(tcp: StreamConnection, context: TLSContext, maxFrame: Int) throws {
        self.loop = tcp.loop
        self.tcp = tcp
        self.maxFrame = maxFrame
        self.tls = try TLSEngine(context: context)
        self.remoteAddress = tcp.peerAddress
        // Handshake flights fit in these; the full buffers come once the peer is authenticated.
        inbound = .allocate(byteCount: TransportLimits.preAuthenticationBuffer, alignment: 16)
        outbound = .allocate(byteCount: TransportLimits.preAuthenticationBuffer, alignment: 16)
        cipherScratch = .allocate(byteCount: TransportLimits.preAuthenticationBuffer, alignment: 16)
    }

    /// The peer is authenticated: frames of up to `maxFrame` may flow now.
    private func growBuffers() {
        let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: maxFrame * 2, alignment: 16)
        let pending = inboundEnd - inboundStart
        if pending > 0, let target = larger.baseAddress, let source = inbound.baseAddress {
            memcpy(target, source + inboundStart, pending)
        }
        inbound.deallocate()
        inbound = larger
        inboundStart = 0
        inboundEnd = pending
        outbound.deallocate()
        outbound = .allocate(byteCount: maxFrame, alignment: 16)
        cipherScratch.deallocate()
        cipherScratch = .allocate(byteCount: maxFrame + 64 * 1024, alignment: 16)
    }

    deinit {
        inbound.deallocate()
        outbound.deallocate()
        cipherScratch.deallocate()
    }

    /// Wraps an accepted connection (server side). The handshake starts at once.
    public static func accept(_ tcp: StreamConnection, context: TLSContext,
                              maxFrame: Int = TransportLimits.defaultMaxFrame) throws -> FramedChannel {
        let channel = try FramedChannel(tcp: tcp, context: context, maxFrame: maxFrame)
        channel.start()
        return channel
    }

    /// Connects and starts the handshake; `completion` receives the channel before it is ready
    /// (set `onReady` there) or the connect error.
    public static func connect(loop: EventLoop, to address: SocketAddress, context: TLSContext,
                               maxFrame: Int = TransportLimits.defaultMaxFrame,
                               completion: @escaping (Result<FramedChannel, Error>) -> Void) {
        StreamConnection.connect(loop: loop, to: address) { result in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let tcp):
                do {
                    let channel = try FramedChannel(tcp: tcp, context: context, maxFrame: maxFrame)
                    completion(.success(channel))
                    channel.start()
                } catch {
                    tcp.close()
                    completion(.failure(error))
                }
            }
        }
    }

    private func start() {
        keepAlive = self
        lastHeard = uv_now(loop.uvLoop)
        tcp.onRead = { [unowned self] bytes in self.received(bytes) }
        tcp.onClose = { [unowned self] error in self.close(error: error) }
        tcp.onWritable = { [unowned self] in self.onWritable?() }
        let timer = LoopTimer(loop: loop)
        heartbeat = timer
        timer.start(after: TransportLimits.handshakeTimeoutMs) { [unowned self] in
            if self.peer == nil { self.close(error: TLSError.handshakeTimeout) }
            else { self.startHeartbeats() }
        }
        tcp.startReading()
        if !tls.handshakeComplete { advanceHandshake() }
    }

    private func startHeartbeats() {
        let interval = heartbeatIntervalMs
        heartbeat?.start(after: interval, repeat: interval) { [unowned self] in
            let now = uv_now(self.loop.uvLoop)
            if now - self.lastHeard > max(interval, TransportLimits.heartbeatIntervalMs) * UInt64(TransportLimits.heartbeatMissesAllowed) {
                self.close(error: ChannelError.heartbeatTimeout)
                return
            }
            var stamp = uv_hrtime().bigEndian
            withUnsafeBytes(of: &stamp) { self.send(.heartbeat, body: $0) }
        }
    }

    // MARK: reading

    private func received(_ ciphertext: UnsafeRawBufferPointer) {
        lastHeard = uv_now(loop.uvLoop)
        tls.feed(ciphertext)
        if peer == nil {
            advanceHandshake()
            if peer == nil {
                // A handshake's flights are small: a peer pouring in more before it is authenticated is refused.
                if tls.pendingInput > TransportLimits.preAuthenticationBuffer * 2 { close(error: TLSError.handshakeFailed("too much data before authentication")) }
                return
            }
        }
        pump()
    }

    private func advanceHandshake() {
        do {
            let progress = try tls.continueHandshake()
            flushCiphertext()
            guard case .complete = progress else { return }
            guard let identity = tls.peerIdentity() else {
                close(error: TLSError.peerNotAuthorized("certificate has no common name"))
                return
            }
            peer = identity
            growBuffers()
            onReady?(identity)
            if !isClosed { startHeartbeats() }
        } catch {
            flushCiphertext()
            close(error: error)
        }
    }

    /// Decrypts what is buffered and delivers whole frames until input runs out or we pause.
    private func pump() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while !isClosed {
            if deliverBufferedFrames() == false { return }
            if isClosed { return }
            if inboundEnd == inbound.count { compactInbound() }
            let free = UnsafeMutableRawBufferPointer(rebasing: inbound[inboundEnd...])
            let n: Int
            do { n = try tls.readPlaintext(into: free) } catch { close(error: error); return }
            if n == 0 { return }
            inboundEnd += n
        }
    }

    /// Returns false when the channel was closed while delivering.
    private func deliverBufferedFrames() -> Bool {
        while !isClosed && inboundEnd > inboundStart {
            let available = UnsafeRawBufferPointer(rebasing: inbound[inboundStart..<inboundEnd])
            switch FrameDecoder.decode(available, maxFrame: maxFrame) {
            case .invalid(let error):
                close(error: error)
                return false
            case .needMore(let total):
                if inboundStart + total > inbound.count { compactInbound() }
                return true
            case .frame(let frame, let consumed):
                inboundStart += consumed
                handle(frame)
            }
        }
        if inboundStart == inboundEnd {
            inboundStart = 0
            inboundEnd = 0
        }
        return !isClosed
    }

    private func compactInbound() {
        let pending = inboundEnd - inboundStart
        if pending > 0, inboundStart > 0, let base = inbound.baseAddress {
            memmove(base, base + inboundStart, pending)
        }
        inboundStart = 0
        inboundEnd = pending
    }

    private func handle(_ frame: FrameView) {
        switch frame.header.type {
        case .heartbeat:
            // Only a timestamp is echoed: a peer cannot make us send back what it chose.
            if frame.body.count == TransportLimits.heartbeatBody { send(.heartbeatAck, body: frame.body) }
        case .heartbeatAck:
            if frame.body.count == 8 {
                let sent = UInt64(bigEndian: frame.body.loadUnaligned(as: UInt64.self))
                onRoundTrip?(Double(uv_hrtime() &- sent) / 1_000_000)
            }
        default:
            onFrame?(frame)
        }
    }

    // MARK: writing

    /// True when this channel's socket has more queued than the high-water mark: sources feeding
    /// it should pause until `onWritable`.
    public var isWriteBlocked: Bool { tcp.queuedBytes > TransportLimits.writeHighWaterMark }
    public var queuedBytes: Int { tcp.queuedBytes }

    public func send(_ type: FrameType, circuitID: UInt64 = 0, sequence: UInt64 = 0, flags: UInt16 = 0,
                     body: UnsafeRawBufferPointer) {
        guard !isClosed, peer != nil else { return }
        guard FrameHeader.size + body.count <= maxFrame else {
            close(error: FrameError.oversize(length: FrameHeader.size + body.count, limit: maxFrame))
            return
        }
        let length = FrameEncoder.encode(type: type, circuitID: circuitID, sequence: sequence, flags: flags,
                                         body: body, into: outbound)
        do {
            try tls.writePlaintext(UnsafeRawBufferPointer(rebasing: outbound[0..<length]))
        } catch {
            close(error: error)
            return
        }
        flushCiphertext()
    }

    /// Sends a frame whose body is written in place by `fill` (at most `capacity` bytes); lets
    /// producers encrypt straight into the outbound buffer.
    public func send(_ type: FrameType, circuitID: UInt64, sequence: UInt64 = 0, flags: UInt16 = 0,
                     capacity: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows {
        guard !isClosed, peer != nil else { return }
        let room = min(capacity, maxFrame - FrameHeader.size)
        let bodyLength = try fill(UnsafeMutableRawBufferPointer(rebasing: outbound[FrameHeader.size..<FrameHeader.size + room]))
        FrameHeader(type: type, flags: flags, bodyLength: UInt32(bodyLength), circuitID: circuitID, sequence: sequence)
            .write(to: outbound)
        do {
            try tls.writePlaintext(UnsafeRawBufferPointer(rebasing: outbound[0..<FrameHeader.size + bodyLength]))
        } catch {
            close(error: error)
            return
        }
        flushCiphertext()
    }

    /// Sends an already-encoded frame as it is: the forwarding path, with no copy of its own.
    public func forward(_ frame: FrameView) {
        forward(raw: frame.raw)
    }

    /// Sends the bytes of an encoded frame (one the caller kept) as they are.
    public func forward(raw: UnsafeRawBufferPointer) {
        guard !isClosed, peer != nil else { return }
        do { try tls.writePlaintext(raw) } catch {
            close(error: error)
            return
        }
        flushCiphertext()
    }

    public func send(_ type: FrameType, circuitID: UInt64 = 0, sequence: UInt64 = 0, body: [UInt8]) {
        body.withUnsafeBytes { send(type, circuitID: circuitID, sequence: sequence, body: $0) }
    }

    private func flushCiphertext() {
        while !tcp.isClosed {
            let n = tls.drainCiphertext(into: cipherScratch)
            if n == 0 { break }
            tcp.write(UnsafeRawBufferPointer(rebasing: cipherScratch[0..<n]))
        }
        if tcp.queuedBytes > TransportLimits.maxQueuedBytes { close(error: ChannelError.peerNotReading(queued: tcp.queuedBytes)) }
    }

    // MARK: closing

    public func close(error: Error? = nil) {
        guard !isClosed else { return }
        isClosed = true
        heartbeat?.close()
        heartbeat = nil
        let callback = onClose
        onFrame = nil
        onClose = nil
        onReady = nil
        onWritable = nil
        tcp.close()
        callback?(error)
        keepAlive = nil
    }
}

public enum ChannelError: Error, CustomStringConvertible {
    case heartbeatTimeout
    case peerNotReading(queued: Int)

    public var description: String {
        switch self {
        case .heartbeatTimeout: return "peer silent for \(TransportLimits.heartbeatMissesAllowed) heartbeat periods"
        case .peerNotReading(let queued): return "peer does not read what it is sent (\(queued >> 20) MiB queued, limit \(TransportLimits.maxQueuedBytes >> 20) MiB)"
        }
    }
}

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
