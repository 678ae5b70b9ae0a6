import CLibUV
import Foundation
import Logging

/// Frames over a mutually authenticated connection: a TLS 1.3 handshake, then link records
/// (`LinkRecordCipher`) over TCP. Loop-confined.
///
/// - Records are opened where they were read — the loop's read buffer — and their frames handed
///   to `onFrame` in place (the views are valid only during the call). Only a record cut by the
///   end of a read is copied, into `partial`, to be completed by the next read. An idle
///   connection holds no buffer.
/// - Outgoing frames are sealed in the loop's write buffer; a data frame's body, already sealed
///   end to end, is written from where it lies, behind its sealed head, in the same system call.
/// - A frame larger than `maxFrame`, a record that fails authentication, or a failed handshake
///   closes this connection, with the reason, and nothing else.
/// - It is always read: heartbeats (liveness) never wait behind data. Backpressure is per
///   circuit, above this type (windows end to end, per-circuit queues in routers).
/// - Heartbeats every `heartbeatIntervalMs`; silence for `heartbeatMissesAllowed` periods closes.
/// - Until the peer is authenticated it holds only the handshake (`preAuthenticationBuffer`); a
///   peer that lets more than `maxQueuedBytes` queue without reading is disconnected.
public final class FramedChannel {
    public let loop: EventLoop
    public let maxFrame: Int
    private let tcp: StreamConnection
    private let isServer: Bool
    /// The TLS session: until the handshake is done, and then until the first record arrives
    /// (a peer that refused our certificate answers with a TLS alert instead, which it explains).
    private var tls: TLSEngine?
    private var sender: LinkRecordCipher?
    private var receiver: LinkRecordCipher?
    /// A record that arrived in part, waiting for the rest.
    private var partial = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var partialCount = 0
    private var heartbeat: LoopTimer?
    private var lastHeard: UInt64 = 0
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
        self.isServer = context.isServer
        self.tls = try TLSEngine(context: context)
        self.remoteAddress = tcp.peerAddress
    }

    deinit { partial.deallocate() }

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
        advanceHandshake()
    }

    private func startHeartbeats() {
        let interval = heartbeatIntervalMs
        heartbeat?.start(after: interval, repeat: interval) { [unowned self] in
            let now = uv_now(self.loop.uvLoop)
            if now - self.lastHeard > max(interval, TransportLimits.heartbeatIntervalMs) * UInt64(TransportLimits.heartbeatMissesAllowed) {
                self.close(error: ChannelError.heartbeatTimeout)
                return
            }
            if self.partialCount == 0 { self.releasePartial() }
            var stamp = uv_hrtime().bigEndian
            withUnsafeBytes(of: &stamp) { self.send(.heartbeat, body: $0) }
        }
    }

    // MARK: the handshake

    private func advanceHandshake() {
        guard peer == nil, let tls else { return }
        do {
            let progress = try tls.continueHandshake()
            flushHandshake()
            guard case .complete = progress else { return }
            guard let identity = tls.peerIdentity() else {
                return close(error: TLSError.peerNotAuthorized("certificate has no common name"))
            }
            let ciphers = try LinkRecordCipher.pair(exportedFrom: tls, isServer: isServer)
            sender = ciphers.send
            receiver = ciphers.receive
            peer = identity
            let early = tls.takeUnreadInput()
            onReady?(identity)
            if isClosed { return }
            startHeartbeats()
            if !early.isEmpty {
                var bytes = early
                bytes.withUnsafeMutableBytes { consume($0) }
            }
        } catch {
            flushHandshake()
            close(error: error)
        }
    }

    private func flushHandshake() {
        guard let tls else { return }
        let scratch = loop.writeBuffer(atLeast: TransportLimits.preAuthenticationBuffer)
        while !tcp.isClosed {
            let n = tls.drainCiphertext(into: scratch)
            if n == 0 { break }
            tcp.write(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
        }
    }

    // MARK: reading

    private func received(_ bytes: UnsafeRawBufferPointer) {
        withExtendedLifetime(self) {
            lastHeard = uv_now(loop.uvLoop)
            if peer == nil {
                guard let tls else { return }
                tls.feed(bytes)
                advanceHandshake()
                // A handshake's flights are small: a peer pouring in more before it is authenticated is refused.
                if peer == nil && tls.pendingInput > TransportLimits.preAuthenticationBuffer * 2 {
                    close(error: TLSError.handshakeFailed("too much data before authentication"))
                }
                return
            }
            // The loop's read buffer, ours for this call: records are opened in place.
            consume(UnsafeMutableRawBufferPointer(mutating: bytes))
        }
    }

    /// Opens and delivers every whole record in `input`; keeps a trailing part for the next read.
    private func consume(_ input: UnsafeMutableRawBufferPointer) {
        var rest = input
        if partialCount > 0 {
            guard let length = completePartial(from: &rest) else { return }
            guard deliver(record: UnsafeMutableRawBufferPointer(rebasing: partial[0..<length])) else { return }
            partialCount = 0
        }
        while !isClosed && rest.count >= LinkRecordCipher.prefixSize {
            guard let length = recordLength(UnsafeRawBufferPointer(rest)) else { return }
            guard rest.count >= length else { break }
            guard deliver(record: UnsafeMutableRawBufferPointer(rebasing: rest[0..<length])) else { return }
            rest = UnsafeMutableRawBufferPointer(rebasing: rest[length...])
        }
        if !isClosed && rest.count > 0 { appendPartial(UnsafeRawBufferPointer(rest)) }
    }

    /// Moves bytes from `rest` into the partial record; its length once it is whole.
    private func completePartial(from rest: inout UnsafeMutableRawBufferPointer) -> Int? {
        if partialCount < LinkRecordCipher.prefixSize {
            take(min(LinkRecordCipher.prefixSize - partialCount, rest.count), from: &rest)
            if partialCount < LinkRecordCipher.prefixSize { return nil }
        }
        guard let length = recordLength(UnsafeRawBufferPointer(rebasing: partial[0..<partialCount])) else { return nil }
        if partialCount < length {
            reservePartial(length)
            take(min(length - partialCount, rest.count), from: &rest)
        }
        return partialCount == length ? length : nil
    }

    private func take(_ count: Int, from rest: inout UnsafeMutableRawBufferPointer) {
        appendPartial(UnsafeRawBufferPointer(rebasing: rest[0..<count]))
        rest = UnsafeMutableRawBufferPointer(rebasing: rest[count...])
    }

    private func appendPartial(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reservePartial(partialCount + bytes.count)
        UnsafeMutableRawBufferPointer(rebasing: partial[partialCount..<partialCount + bytes.count]).copyMemory(from: bytes)
        partialCount += bytes.count
    }

    private func reservePartial(_ count: Int) {
        guard partial.count < count else { return }
        let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, min(2 * partial.count, LinkRecordCipher.overhead + maxFrame)),
                                                           alignment: 16)
        if partialCount > 0 { UnsafeMutableRawBufferPointer(rebasing: larger[0..<partialCount]).copyMemory(from: UnsafeRawBufferPointer(rebasing: partial[0..<partialCount])) }
        partial.deallocate()
        partial = larger
    }

    private func releasePartial() {
        partial.deallocate()
        partial = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    /// The whole record's length from its prefix, or nil (and the channel closed) when no frame
    /// this channel accepts could be that long.
    private func recordLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let (sealed, open) = LinkRecordCipher.lengths(of: bytes)
        guard sealed >= FrameHeader.size, sealed + open <= maxFrame else {
            // A TLS record (an alert, encrypted as TLS 1.3 does): the peer refused the handshake after all.
            if let tls, bytes.count >= 3, bytes[0] == 0x15 || bytes[0] == 0x17, bytes[1] == 0x03, bytes[2] == 0x03 {
                tls.feed(bytes)
                let reason: String
                do { _ = try tls.readPlaintext(into: loop.writeBuffer(atLeast: 1024)); reason = "it sent an alert" } catch { reason = "\(error)" }
                close(error: LinkRecordError.refusedByPeer(reason))
                return nil
            }
            close(error: sealed + open > maxFrame ? FrameError.oversize(length: sealed + open, limit: maxFrame)
                                                  : LinkRecordError.malformed("sealed part of \(sealed) bytes"))
            return nil
        }
        return LinkRecordCipher.overhead + sealed + open
    }

    /// Opens one whole record in place and hands its frame on. False when the channel closed.
    private func deliver(record: UnsafeMutableRawBufferPointer) -> Bool {
        guard var receiver, receiver.open(record) else {
            close(error: LinkRecordError.forged)
            return false
        }
        self.receiver = receiver
        tls = nil
        let (sealed, open) = LinkRecordCipher.lengths(of: UnsafeRawBufferPointer(record))
        let frameBytes = UnsafeRawBufferPointer(rebasing: record[LinkRecordCipher.overhead...])
        switch FrameDecoder.decode(frameBytes, maxFrame: maxFrame) {
        case .invalid(let error):
            close(error: error)
        case .needMore:
            close(error: LinkRecordError.malformed("the frame is longer than its record"))
        case .frame(let frame, let consumed):
            guard consumed == frameBytes.count, LinkRecordCipher.sealedLength(of: frame.header) == sealed else {
                close(error: LinkRecordError.malformed("\(frame.header.type) frame of \(consumed) bytes in a record sealing \(sealed) of \(sealed + open)"))
                return false
            }
            handle(frame)
        }
        return !isClosed
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

    /// Bytes this channel may have queued in user space before it counts as blocked. A router
    /// sets it to 0: it keeps waiting frames in per-circuit queues, which it drains round-robin
    /// once the kernel took everything (`onWritable` then fires at an empty queue).
    public var writeHighWaterMark = TransportLimits.writeHighWaterMark {
        didSet { tcp.lowWaterMark = min(tcp.lowWaterMark, writeHighWaterMark) }
    }

    /// True when this channel's socket has more queued than the high-water mark: sources feeding
    /// it should pause until `onWritable`.
    public var isWriteBlocked: Bool { tcp.queuedBytes > writeHighWaterMark }
    public var queuedBytes: Int { tcp.queuedBytes }

    public func send(_ type: FrameType, circuitID: UInt64 = 0, sequence: UInt64 = 0, flags: UInt16 = 0,
                     body: UnsafeRawBufferPointer) {
        guard !isClosed, peer != nil else { return }
        let frameLength = FrameHeader.size + body.count
        guard frameLength <= maxFrame else {
            return close(error: FrameError.oversize(length: frameLength, limit: maxFrame))
        }
        let scratch = loop.writeBuffer(atLeast: LinkRecordCipher.overhead + frameLength)
        let header = FrameHeader(type: type, flags: flags, bodyLength: UInt32(body.count), circuitID: circuitID, sequence: sequence)
        header.write(to: UnsafeMutableRawBufferPointer(rebasing: scratch[LinkRecordCipher.overhead...]))
        if body.count > 0 {
            let start = LinkRecordCipher.overhead + FrameHeader.size
            UnsafeMutableRawBufferPointer(rebasing: scratch[start..<start + body.count]).copyMemory(from: body)
        }
        let openStart = LinkRecordCipher.overhead + LinkRecordCipher.sealedLength(of: header)
        writeRecord(scratch, header: header, open: UnsafeRawBufferPointer(rebasing: scratch[openStart..<LinkRecordCipher.overhead + frameLength]))
    }

    public func send(_ type: FrameType, circuitID: UInt64 = 0, sequence: UInt64 = 0, body: [UInt8]) {
        body.withUnsafeBytes { send(type, circuitID: circuitID, sequence: sequence, body: $0) }
    }

    /// Sends a data frame whose body (a circuit's end-to-end tag, then its ciphertext) stays where
    /// it is: only the header and the tag are copied, to be sealed.
    public func sendData(circuitID: UInt64, sequence: UInt64, body: UnsafeRawBufferPointer) {
        guard !isClosed, peer != nil else { return }
        let frameLength = FrameHeader.size + body.count
        guard frameLength <= maxFrame else {
            return close(error: FrameError.oversize(length: frameLength, limit: maxFrame))
        }
        let header = FrameHeader(type: .data, bodyLength: UInt32(body.count), circuitID: circuitID, sequence: sequence)
        let sealedBody = LinkRecordCipher.sealedLength(of: header) - FrameHeader.size
        let scratch = loop.writeBuffer(atLeast: LinkRecordCipher.overhead + FrameHeader.size + sealedBody)
        header.write(to: UnsafeMutableRawBufferPointer(rebasing: scratch[LinkRecordCipher.overhead...]))
        let start = LinkRecordCipher.overhead + FrameHeader.size
        UnsafeMutableRawBufferPointer(rebasing: scratch[start..<start + sealedBody]).copyMemory(from: UnsafeRawBufferPointer(rebasing: body[0..<sealedBody]))
        writeRecord(scratch, header: header, open: UnsafeRawBufferPointer(rebasing: body[sealedBody...]))
    }

    /// Sends an already-encoded frame as it is: the forwarding path.
    public func forward(_ frame: FrameView) {
        forward(raw: frame.raw, header: frame.header)
    }

    /// Sends the bytes of an encoded frame (one the caller kept) as they are.
    public func forward(raw: UnsafeRawBufferPointer) {
        guard case .frame(let frame, _) = FrameDecoder.decode(raw, maxFrame: maxFrame) else { return }
        forward(raw: raw, header: frame.header)
    }

    private func forward(raw: UnsafeRawBufferPointer, header: FrameHeader) {
        guard !isClosed, peer != nil else { return }
        guard raw.count <= maxFrame else { return close(error: FrameError.oversize(length: raw.count, limit: maxFrame)) }
        let sealed = LinkRecordCipher.sealedLength(of: header)
        let scratch = loop.writeBuffer(atLeast: LinkRecordCipher.overhead + sealed)
        UnsafeMutableRawBufferPointer(rebasing: scratch[LinkRecordCipher.overhead..<LinkRecordCipher.overhead + sealed])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<sealed]))
        writeRecord(scratch, header: header, open: UnsafeRawBufferPointer(rebasing: raw[sealed...]))
    }

    /// Seals the record whose head (room for the prefix and tag, then the frame's sealed part)
    /// is at the start of `scratch`, and writes it followed by `open`.
    private func writeRecord(_ scratch: UnsafeMutableRawBufferPointer, header: FrameHeader, open: UnsafeRawBufferPointer) {
        let head = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<LinkRecordCipher.overhead + LinkRecordCipher.sealedLength(of: header)])
        guard var sender, sender.seal(head, openLength: open.count) else {
            return close(error: LinkRecordError.malformed("sealing failed"))
        }
        self.sender = sender
        tcp.write(UnsafeRawBufferPointer(head), open)
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
