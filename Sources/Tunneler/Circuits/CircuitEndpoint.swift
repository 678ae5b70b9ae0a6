import Foundation
import Logging
import Shared
import X509

/// One end of an end-to-end encrypted circuit: a local TCP connection on one side, sealed
/// frames to the router on the other. Loop-confined.
///
/// Life: handshaking (both hellos sent at once, local reads paused) → open (bytes flow both
/// ways) → closed (the router told once).
///
/// Trust: the peer is the identity the controller's signed grant names (never one a router
/// names), and the handshake must finish within `TransportLimits.e2eHandshakeTimeoutMs`. Only an
/// end of stream the peer signed ends the local socket cleanly (FIN, after everything was
/// delivered); a circuit that ends any other way — cut by a router, a forged end, a failed
/// handshake — resets it, so an application never mistakes a truncated stream for a whole one.
///
/// Flow control, per circuit (in the spirit of QUIC stream windows): an acknowledgement says
/// which frames *arrived* (so the sender keeps no more than it must) and how far the sender may
/// go (`windowEnd`: the bytes the receiving application has taken, plus `circuitWindow`). A
/// receiver whose application stops reading still acknowledges everything that arrives, but its
/// window stops moving: its sender stops, and nothing else does — the router connection is never
/// paused for one circuit. What a circuit holds anywhere is bounded by its window.
///
/// No byte lost: every sealed data frame stays in `unacknowledged` until it arrived. It is sent
/// again when a router reports the path repaired, or when acknowledgements stall while the router
/// connection has nothing queued (never into a connection that is merely slow). Bytes read while
/// no router is attached are sealed and kept, and reading stops until one is.
final class CircuitEndpoint {
    static let window = TransportLimits.circuitWindow
    static let ackEveryBytes = 256 << 10
    static let ackDelayMs: UInt64 = 5
    static let retransmitAfterMs: UInt64 = 1_000

    let id: UInt64
    let role: CircuitRole
    let service: String
    /// The other end, as the circuit grant names it.
    let peerIdentity: String
    private let local: StreamConnection
    /// The router connection carrying the circuit; nil between losing one and reattaching.
    private weak var edge: EdgeLink?
    private let handshake: E2EHandshake
    private let authority: Certificate
    private var cipher: CircuitCipher?
    private var prelude: [UInt8]?
    private var closed = false
    private var localEnded = false
    private var peerEnded = false
    private let logger: Logger

    // Sending. The ring holds what was sent and did not arrive yet: at most the window, plus one
    // more read from the local socket (reading stops only after it).
    private let unacknowledged = RetransmitBuffer(capacity: CircuitEndpoint.window + 2 * TransportLimits.readChunk)
    /// Plaintext bytes sealed so far, and how far the peer lets us go.
    private var sentBytes: UInt64 = 0
    private var peerWindowEnd = UInt64(CircuitEndpoint.window)
    private var routerBlocked = false
    private var endSentAt: UInt64?
    private var lastAckProgress: UInt64 = 0
    private var retransmitTimer: LoopTimer?

    // Receiving.
    private var peerEndAt: UInt64?
    /// Plaintext bytes handed to the local socket; what it has taken is that less its queue.
    private var deliveredBytes: UInt64 = 0
    private var unackedReceivedBytes = 0
    private var advertisedWindowEnd = UInt64(CircuitEndpoint.window)
    private var ackTimer: LoopTimer?
    private var handshakeTimer: LoopTimer?

    var onClosed: ((CircuitEndpoint) -> Void)?
    /// The circuit was refused (a handshake or an end that did not hold): for the audit trail.
    var onRefused: ((CircuitEndpoint, String) -> Void)?

    /// `grant` is the controller's signed grant for this circuit, already verified to name us;
    /// `peerIdentity` is the other identity it names. `handshake`, when given, is our half
    /// begun earlier for the same circuit and grant (while a connect was under way).
    init(id: UInt64, role: CircuitRole, service: String, grant: String, peerIdentity: String, local: StreamConnection, edge: EdgeLink,
         identity: EnrolledIdentity, prelude: [UInt8]?, handshake begun: E2EHandshake? = nil, logger: Logger) throws {
        self.id = id
        self.role = role
        self.service = service
        self.peerIdentity = peerIdentity
        self.local = local
        self.edge = edge
        self.authority = identity.authority
        self.prelude = prelude
        self.logger = logger
        if let begun, begun.role == role, begun.circuitID == id {
            handshake = begun
        } else {
            handshake = try E2EHandshake(role: role, circuitID: id, grant: grant, identityKey: identity.key, certificateDER: identity.certificateDER)
        }
        let timer = LoopTimer(loop: local.loop)
        handshakeTimer = timer
        timer.start(after: TransportLimits.e2eHandshakeTimeoutMs) { [weak self] in
            guard let self, self.cipher == nil, !self.closed else { return }
            self.refuse("the end-to-end handshake did not complete within \(TransportLimits.e2eHandshakeTimeoutMs / 1000) s")
        }
        local.stopReading()
        // The local queue draining is what moves this circuit's receive window.
        local.lowWaterMark = Self.window / 2
        local.onRead = { [unowned self] bytes in self.sendToPeer(bytes) }
        local.onClose = { [unowned self] error in
            self.finish(reason: error.map { "local connection failed: \($0)" } ?? "closed by \(self.role == .dialer ? "client" : "service")",
                        notifyPeer: true)
        }
        local.onWritable = { [unowned self] in self.localDrained() }
        local.onEndOfStream = { [unowned self] in self.localFinishedSending() }
    }

    /// Sends this side's hello. Both sides send theirs as soon as the circuit is theirs (the host
    /// right after accepting it, behind its answer to the router), so neither waits for the
    /// other's; the host sends its hello once more when the dialer's arrives (a duplicate is ignored).
    func start() { sendHello() }

    var isOpen: Bool { cipher != nil && !closed }

    /// Carries on over another router connection (after the previous one dropped). Frames sent
    /// meanwhile were lost with it; they go again when the router reports the new path whole.
    func move(to link: EdgeLink) {
        edge = link
        routerBlocked = false
        updateLocalReading()
    }

    /// The router connection dropped; until `move(to:)`, nothing is read locally.
    func detached() {
        edge = nil
        updateLocalReading()
    }

    private func sendHello() {
        let body = handshake.hello.encoded()
        body.withUnsafeBytes { edge?.channel?.send(.e2eHandshake, circuitID: id, body: $0) }
    }

    /// A frame for this circuit arrived from the router.
    func received(_ frame: FrameView) {
        guard !closed else { return }
        switch frame.header.type {
        case .e2eHandshake:
            guard cipher == nil else { return }  // a resent hello after a reroute
            do {
                let hello = try E2EHello(decoding: frame.body)
                cipher = try handshake.complete(with: hello, expectedPeer: peerIdentity, authority: authority)
            } catch {
                return refuse("end-to-end handshake failed: \(error)")
            }
            handshakeTimer?.close()
            handshakeTimer = nil
            if role == .host {
                // Again: the early one may have reached a router of the path before the path did.
                sendHello()
                if let prelude { prelude.withUnsafeBytes { local.write($0) } }
                prelude = nil
            }
            startRetransmitTimer()
            updateLocalReading()
        case .data:
            receivedData(frame)
        case .ack:
            receivedAck(frame)
        case .circuitEnd:
            guard let cipher, cipher.isValidEnd(frame.body, for: frame.header.sequence) else {
                return refuse("an end of stream the peer did not sign arrived (a router on the path may be tampering); the stream is reset")
            }
            peerEndAt = frame.header.sequence
            applyPeerEndIfReached()
        case .circuitRerouted:
            logger.info("circuit rerouted; resending what did not arrive", metadata: ["circuit": "\(id)", "frames": "\(unacknowledged.count)"])
            resendUnacknowledged()
            sendAck()
        case .circuitClose:
            // Unauthenticated (a router may send it): the stream did not end as it should, so it is reset.
            let reason = String(decoding: frame.body.prefix(500), as: UTF8.self)
            finish(reason: reason.isEmpty ? "closed" : reason, notifyPeer: false)
        default:
            break
        }
    }

    // MARK: receiving

    /// What the local application has taken of what we delivered.
    private var consumedBytes: UInt64 { deliveredBytes - UInt64(min(local.queuedBytes, Int(deliveredBytes))) }

    private func receivedData(_ frame: FrameView) {
        // The peer's hello always travels ahead of its data on the same path: a router dropped it.
        guard var cipher else { return refuse("data arrived before the peer's end-to-end hello") }
        let sequence = frame.header.sequence
        if sequence < cipher.receiveCounter {
            return sendAck()  // a duplicate after a reroute: say again what arrived
        }
        guard sequence == cipher.receiveCounter else { return }  // a gap: the sender resends it
        do {
            // The frame lies in the router connection's read buffer, ours for this call: opened in place.
            let plaintext = try cipher.open(inPlace: UnsafeMutableRawBufferPointer(mutating: frame.body), counter: sequence)
            self.cipher = cipher
            local.write(plaintext)
            TunnelMetrics.bytesReceived.increment(by: Int64(plaintext.count))
            deliveredBytes += UInt64(plaintext.count)
            unackedReceivedBytes += plaintext.count
        } catch {
            logger.warning("circuit integrity failure", metadata: ["circuit": "\(id)", "error": "\(error)"])
            return finish(reason: "\(error)", notifyPeer: true)
        }
        // A peer that sends past the window it was given is not keeping the protocol.
        if deliveredBytes > advertisedWindowEnd + UInt64(TransportLimits.defaultMaxFrame) {
            return finish(reason: "the peer sent beyond its window", notifyPeer: true)
        }
        scheduleAck(immediately: unackedReceivedBytes >= Self.ackEveryBytes)
        applyPeerEndIfReached()
    }

    /// The local socket drained: the window moved; say so if it moved far.
    private func localDrained() {
        guard cipher != nil, !closed else { return }
        if consumedBytes + UInt64(Self.window) >= advertisedWindowEnd + UInt64(Self.window / 4) { sendAck() }
    }

    private func applyPeerEndIfReached() {
        guard !peerEnded, let end = peerEndAt, let cipher, cipher.receiveCounter == end else { return }
        peerEnded = true
        sendAck()
        local.shutdownWrite()
        finishIfBothEnded()
    }

    private func scheduleAck(immediately: Bool) {
        if immediately { return sendAck() }
        guard ackTimer == nil else { return }
        let timer = LoopTimer(loop: local.loop)
        ackTimer = timer
        timer.start(after: Self.ackDelayMs) { [weak self] in
            guard let self else { return }
            self.ackTimer?.close()
            self.ackTimer = nil
            if !self.closed { self.sendAck() }
        }
    }

    /// Acknowledges every frame that arrived, and opens the window as far as the application took.
    private func sendAck() {
        guard let cipher, !closed else { return }
        unackedReceivedBytes = 0
        let windowEnd = max(advertisedWindowEnd, consumedBytes + UInt64(Self.window))
        advertisedWindowEnd = windowEnd
        let received = cipher.receiveCounter
        var body = withUnsafeBytes(of: windowEnd.bigEndian) { Array($0) }
        body += cipher.ackTag(for: received, windowEnd: windowEnd)
        edge?.channel?.send(.ack, circuitID: id, sequence: received, body: body)
    }

    private func receivedAck(_ frame: FrameView) {
        guard let cipher, frame.body.count == 8 + CircuitCipher.ackTagSize else { return }
        let windowEnd = UInt64(bigEndian: frame.body.loadUnaligned(as: UInt64.self))
        let tag = UnsafeRawBufferPointer(rebasing: frame.body[8...])
        let arrived = frame.header.sequence
        guard cipher.isValidAck(tag, for: arrived, windowEnd: windowEnd), arrived <= cipher.sendCounter else { return }
        if let oldest = unacknowledged.oldestSequence, arrived > oldest {
            unacknowledged.release(below: arrived)
            lastAckProgress = local.loop.nowMs
        }
        if windowEnd > peerWindowEnd {
            peerWindowEnd = windowEnd
            updateLocalReading()
        }
        finishIfBothEnded()
    }

    // MARK: sending

    private func sendToPeer(_ bytes: UnsafeRawBufferPointer) {
        guard var sealer = cipher else { return }
        TunnelMetrics.bytesSent.increment(by: Int64(bytes.count))
        let channel = edge?.channel
        var offset = 0
        while offset < bytes.count {
            let chunk = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + TransportLimits.dataChunk)])
            let length = chunk.count + CircuitCipher.tagSize
            guard let slot = unacknowledged.reserve(length) else {
                // Cannot happen while reads stop at the window; refuse rather than drop.
                return finish(reason: "retransmit buffer overflow", notifyPeer: true)
            }
            do {
                let (count, sequence) = try sealer.seal(chunk, into: slot)
                unacknowledged.commit(sequence: sequence, length: count)
                if unacknowledged.count == 1 { lastAckProgress = local.loop.nowMs }
                // Without a router (between losing one and reattaching) the frame is kept, and goes on the new path.
                channel?.sendData(circuitID: id, sequence: sequence, body: UnsafeRawBufferPointer(rebasing: slot[0..<count]))
            } catch {
                return finish(reason: "sealing failed: \(error)", notifyPeer: true)
            }
            offset += chunk.count
        }
        cipher = sealer
        sentBytes += UInt64(bytes.count)
        if let channel, channel.isWriteBlocked {
            routerBlocked = true
            edge?.pauseUntilWritable(self)
        }
        updateLocalReading()
    }

    /// Sends every frame that did not arrive again, in order, and the end marker if it was sent.
    private func resendUnacknowledged() {
        guard let channel = edge?.channel else { return }
        unacknowledged.forEach { sequence, sealed in channel.sendData(circuitID: id, sequence: sequence, body: sealed) }
        if let end = endSentAt, let cipher { channel.send(.circuitEnd, circuitID: id, sequence: end, body: cipher.endTag(for: end)) }
        lastAckProgress = local.loop.nowMs
    }

    /// Resends when acknowledgements stall (frames lost between a path failing and its repair) —
    /// only once the router connection has nothing queued: a slow connection is not a lossy one.
    private func startRetransmitTimer() {
        let timer = LoopTimer(loop: local.loop)
        retransmitTimer = timer
        timer.start(after: Self.retransmitAfterMs, repeat: Self.retransmitAfterMs / 2) { [weak self] in
            guard let self, !self.closed else { return }
            self.localDrained()  // a window that moved is announced even if no callback said so
            guard let channel = self.edge?.channel, channel.queuedBytes == 0 else { return }
            let waiting = !self.unacknowledged.isEmpty || (self.endSentAt != nil && !self.peerAcknowledgedEnd)
            // No give-up here: a peer that stopped reading is alive, and a circuit that cannot be
            // repaired is closed by its routers (the controller spreads that close along the path).
            if waiting && self.local.loop.nowMs - self.lastAckProgress >= Self.retransmitAfterMs { self.resendUnacknowledged() }
        }
    }

    private var peerAcknowledgedEnd: Bool {
        guard let end = endSentAt else { return false }
        return unacknowledged.isEmpty && end <= (cipher?.sendCounter ?? 0)
    }

    /// The local side half-closed: tell the peer, keep delivering what it still sends.
    private func localFinishedSending() {
        guard let cipher else { return finish(reason: "the local side ended before the end-to-end handshake", notifyPeer: true) }
        localEnded = true
        let end = cipher.sendCounter
        endSentAt = end
        edge?.channel?.send(.circuitEnd, circuitID: id, sequence: end, body: cipher.endTag(for: end))
        finishIfBothEnded()
    }

    /// Done when both sides have ended and everything we sent arrived.
    private func finishIfBothEnded() {
        if localEnded && peerEnded && unacknowledged.isEmpty { finish(reason: "completed", notifyPeer: false, completed: true) }
    }

    // MARK: local reading

    /// Read the local socket only while the circuit is open, a router is attached and not full,
    /// and the peer's window has room.
    private func updateLocalReading() {
        let attached = edge?.channel != nil
        if isOpen && attached && !routerBlocked && !localEnded && sentBytes < peerWindowEnd {
            local.startReading()
        } else {
            local.stopReading()
        }
    }

    func routerDrained() {
        routerBlocked = false
        updateLocalReading()
    }

    /// Refuses the circuit: it ends (the local socket reset) and the refusal is reported.
    private func refuse(_ reason: String) {
        guard !closed else { return }
        logger.warning("circuit refused", metadata: ["circuit": "\(id)", "peer": "\(peerIdentity)", "reason": "\(reason)"])
        onRefused?(self, reason)
        finish(reason: reason, notifyPeer: true)
    }

    /// Ends the circuit. When both ends `completed` (each side's end signed and delivered), the
    /// local socket gets what is queued, then closes; any other end resets it.
    func finish(reason: String, notifyPeer: Bool, completed: Bool = false) {
        guard !closed else { return }
        closed = true
        logger.debug("circuit closed", metadata: ["circuit": "\(id)", "reason": "\(reason)"])
        if notifyPeer { edge?.channel?.send(.circuitClose, circuitID: id, body: Array(reason.prefix(500).utf8)) }
        ackTimer?.close()
        retransmitTimer?.close()
        handshakeTimer?.close()
        local.onRead = nil
        local.onClose = nil
        local.onEndOfStream = nil
        local.onWritable = nil
        if completed { local.closeAfterFlush() } else { local.abort() }
        onClosed?(self)
    }
}
