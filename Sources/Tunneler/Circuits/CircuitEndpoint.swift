import Foundation
import Logging
import Shared
import X509

/// One end of an end-to-end encrypted circuit: a local TCP connection on one side, sealed
/// frames to the router on the other. Loop-confined.
///
/// Life: handshaking (hellos exchanged, local reads paused) → open (bytes flow both ways) →
/// closed (local socket flushed, then closed; the router told once).
final class CircuitEndpoint {
    let id: UInt64
    let role: CircuitRole
    let service: String
    let peerIdentity: String
    private let local: TCPConnection
    private unowned let edge: EdgeLink
    private let handshake: E2EHandshake
    private let authority: Certificate
    private var cipher: CircuitCipher?
    private var prelude: [UInt8]?
    private var closed = false
    private var localEnded = false
    private var peerEnded = false
    private let logger: Logger

    var onClosed: ((CircuitEndpoint) -> Void)?

    init(id: UInt64, role: CircuitRole, service: String, peerIdentity: String, local: TCPConnection, edge: EdgeLink,
         identity: EnrolledIdentity, prelude: [UInt8]?, logger: Logger) throws {
        self.id = id
        self.role = role
        self.service = service
        self.peerIdentity = peerIdentity
        self.local = local
        self.edge = edge
        self.authority = identity.authority
        self.prelude = prelude
        self.logger = logger
        handshake = try E2EHandshake(role: role, circuitID: id, identityKey: identity.key, certificate: identity.certificate)
        local.stopReading()
        local.onRead = { [unowned self] bytes in self.sendToPeer(bytes) }
        local.onClose = { [unowned self] error in
            self.finish(reason: error.map { "local connection failed: \($0)" } ?? "closed by \(self.role == .dialer ? "client" : "service")",
                        notifyPeer: true)
        }
        local.onWritable = { [unowned self] in self.edge.localDrained(self) }
        local.onEndOfStream = { [unowned self] in self.localFinishedSending() }
        if role == .dialer { sendHello() }
    }

    var isOpen: Bool { cipher != nil && !closed }
    var localWriteBlocked: Bool { local.queuedBytes > TransportLimits.writeHighWaterMark }

    private func sendHello() {
        guard let body = try? JSONEncoder().encode(handshake.hello) else { return }
        body.withUnsafeBytes { edge.channel?.send(.e2eHandshake, circuitID: id, body: $0) }
    }

    /// A frame for this circuit arrived from the router.
    func received(_ frame: FrameView) {
        guard !closed else { return }
        switch frame.header.type {
        case .e2eHandshake:
            guard cipher == nil else { return finish(reason: "second handshake on an open circuit", notifyPeer: true) }
            do {
                let hello = try JSONDecoder().decode(E2EHello.self, from: Data(frame.body))
                cipher = try handshake.complete(with: hello, expectedPeer: peerIdentity, authority: authority)
            } catch {
                logger.warning("end-to-end handshake failed", metadata: ["circuit": "\(id)", "error": "\(error)"])
                return finish(reason: "end-to-end handshake failed: \(error)", notifyPeer: true)
            }
            if role == .host {
                sendHello()
                if let prelude { prelude.withUnsafeBytes { local.write($0) } }
                prelude = nil
            }
            local.startReading()
        case .data:
            guard var cipher else { return finish(reason: "data before handshake", notifyPeer: true) }
            do {
                let plaintext = try cipher.open(frame.body, counter: frame.header.sequence)
                self.cipher = cipher
                plaintext.withUnsafeBytes { local.write($0) }
                edge.localBacklogChanged(self)
            } catch {
                logger.warning("circuit integrity failure", metadata: ["circuit": "\(id)", "error": "\(error)"])
                return finish(reason: "\(error)", notifyPeer: true)
            }
        case .circuitEnd:
            peerEnded = true
            local.shutdownWrite()
            if localEnded { finish(reason: "completed", notifyPeer: false) }
        case .circuitClose:
            let reason = String(decoding: frame.body, as: UTF8.self)
            finish(reason: reason.isEmpty ? "closed by peer" : reason, notifyPeer: false)
        default:
            break
        }
    }

    private func sendToPeer(_ bytes: UnsafeRawBufferPointer) {
        guard let channel = edge.channel, var sealer = cipher else { return }
        var offset = 0
        while offset < bytes.count {
            let chunk = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + TransportLimits.dataChunk)])
            do {
                try channel.send(.data, circuitID: id, sequence: sealer.sendCounter, capacity: chunk.count + CircuitCipher.tagSize) { out in
                    try sealer.seal(chunk, into: out).count
                }
            } catch {
                return finish(reason: "sealing failed: \(error)", notifyPeer: true)
            }
            offset += chunk.count
        }
        cipher = sealer
        if channel.isWriteBlocked { edge.pauseUntilWritable(local) }
    }

    /// The local side half-closed: tell the peer, keep delivering what it still sends.
    private func localFinishedSending() {
        localEnded = true
        edge.channel?.send(.circuitEnd, circuitID: id, body: [])
        if peerEnded { finish(reason: "completed", notifyPeer: false) }
    }

    func pauseLocalReads() { local.stopReading() }
    func resumeLocalReads() { if isOpen { local.startReading() } }

    /// Ends the circuit: the local socket gets what is already queued, then closes.
    func finish(reason: String, notifyPeer: Bool) {
        guard !closed else { return }
        closed = true
        logger.debug("circuit closed", metadata: ["circuit": "\(id)", "reason": "\(reason)"])
        if notifyPeer { edge.channel?.send(.circuitClose, circuitID: id, body: Array(reason.utf8)) }
        local.onRead = nil
        local.onClose = nil
        local.onEndOfStream = nil
        local.closeAfterFlush()
        onClosed?(self)
    }
}
