import Foundation

/// Request/response and notifications over a framed channel's control frames. Circuit frames
/// pass through to `onCircuitFrame` untouched. Loop-confined.
public final class ControlPeer {
    public typealias Reply = (ControlMessage) -> Void

    public let channel: FramedChannel
    private var nextID: UInt32 = 1
    private var pending: [UInt32: (Result<ControlMessage, Error>) -> Void] = [:]
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()

    /// A message from the peer; `reply` is non-nil when the peer awaits an answer.
    public var onMessage: ((ControlMessage, Reply?) -> Void)?
    public var onCircuitFrame: ((FrameView) -> Void)?
    public var onClose: ((Error?) -> Void)?

    public init(channel: FramedChannel) {
        self.channel = channel
        // The channel's callbacks hold this peer; the cycle ends when the channel closes.
        channel.onFrame = { [self] frame in
            if frame.header.type == .control { self.receivedControl(frame.body) } else { self.onCircuitFrame?(frame) }
        }
        channel.onClose = { [self] error in
            let waiting = self.pending
            self.pending.removeAll()
            for (_, completion) in waiting { completion(.failure(error ?? ControlError.connectionClosed)) }
            self.onClose?(error)
            self.onMessage = nil
            self.onCircuitFrame = nil
            self.onClose = nil
        }
    }

    public var peer: PeerIdentity? { channel.peer }
    public var isClosed: Bool { channel.isClosed }

    public func request(_ message: ControlMessage, timeoutMs: UInt64 = 10_000,
                        completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        request(timeoutMs: timeoutMs, completion: completion) { [self] id in send(ControlEnvelope(id: id, message: message)) }
    }

    /// The same for a message already in JSON (`ControlMessageJSON`): a batch of records is
    /// encoded before it reaches this loop, which carries every circuit and must not stall for it.
    public func request(encoded message: Data, timeoutMs: UInt64 = 10_000,
                        completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        request(timeoutMs: timeoutMs, completion: completion) { [self] id in
            let body = ControlMessageJSON.envelope(id: id, message: message)
            body.withUnsafeBytes { channel.send(.control, body: $0) }
        }
    }

    private func request(timeoutMs: UInt64, completion: @escaping (Result<ControlMessage, Error>) -> Void, send: (UInt32) -> Void) {
        guard !channel.isClosed else {
            completion(.failure(ControlError.connectionClosed))
            return
        }
        let id = nextID
        nextID = nextID == UInt32.max ? 1 : nextID + 1
        pending[id] = completion
        send(id)
        LoopTimer.once(on: channel.loop, after: timeoutMs) { [weak self] in
            guard let self, let completion = self.pending.removeValue(forKey: id) else { return }
            completion(.failure(ControlError.timeout))
        }
    }

    public func notify(_ message: ControlMessage) {
        send(ControlEnvelope(message: message))
    }

    private func send(_ envelope: ControlEnvelope) {
        if case .ok = envelope.message, envelope.id == 0, envelope.replyTo != 0 {
            let body = ControlMessageJSON.okReply(to: envelope.replyTo)
            body.withUnsafeBytes { channel.send(.control, body: $0) }
            return
        }
        if let body = DialPathMessages.encode(envelope) {
            body.withUnsafeBytes { channel.send(.control, body: $0) }
            return
        }
        guard let body = try? encoder.encode(envelope) else { return }
        body.withUnsafeBytes { channel.send(.control, body: $0) }
    }

    private func receivedControl(_ body: UnsafeRawBufferPointer) {
        if let replyTo = ControlMessageJSON.okReply(in: body) {
            pending.removeValue(forKey: replyTo)?(.success(.ok))
            return
        }
        let envelope: ControlEnvelope
        if let dialPath = DialPathMessages.decode(body) {
            envelope = dialPath
        } else {
            do {
                envelope = try decoder.decode(ControlEnvelope.self, from: Data(body))
            } catch {
                channel.close(error: ControlError.malformed("\(error)"))
                return
            }
        }
        if envelope.replyTo != 0 {
            pending.removeValue(forKey: envelope.replyTo)?(.success(envelope.message))
            return
        }
        let reply: Reply? = envelope.id == 0 ? nil : { [weak self] answer in
            self?.send(ControlEnvelope(replyTo: envelope.id, message: answer))
        }
        onMessage?(envelope.message, reply)
    }
}

public enum ControlError: Error, CustomStringConvertible {
    case connectionClosed
    case timeout
    case malformed(String)
    case refused(String)
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .connectionClosed: return "control connection closed"
        case .timeout: return "no reply within the timeout"
        case .malformed(let why): return "malformed control message: \(why)"
        case .refused(let why): return why
        case .unexpectedReply(let what): return "unexpected reply: \(what)"
        }
    }
}

extension Result where Success == ControlMessage, Failure == Error {
    /// Turns a `.failure(message:)` reply into an error.
    public var unwrapped: Result<ControlMessage, Error> {
        if case .success(.failure(let message)) = self { return .failure(ControlError.refused(message)) }
        return self
    }
}
