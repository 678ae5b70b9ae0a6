import Shared

/// A channel that carries circuit frames: a tunneler's edge connection or a link to another
/// router. Forwarding deals only in carriers. Loop-confined.
///
/// Fair, per-circuit backpressure: a frame goes straight to the kernel while it takes
/// everything. Once a write leaves bytes behind, frames wait in their own circuit's queue and are
/// sent round-robin across circuits when the kernel has taken the rest — so one circuit's burst
/// delays the others by one frame each, not by its whole backlog, no source connection is ever
/// paused, and a waiting frame is copied once (into its queue), not again into a write queue.
/// A circuit's queue is bounded by `circuitQueuePerHop` (its end-to-end window keeps a
/// well-behaved sender within it).
final class CircuitCarrier {
    let channel: FramedChannel
    /// Who is at the other end, for logs: "identity 'alice'" or "router 'r2'".
    let label: String
    /// A link to another router (else a tunneler's edge connection).
    let isLink: Bool
    var circuits: Set<UInt64> = []
    private var queues: [UInt64: CircuitQueue] = [:]
    /// Circuits with frames waiting, in the order they get their next turn.
    private var turns: [UInt64] = []
    private var turn = 0

    init(channel: FramedChannel, label: String, isLink: Bool) {
        self.channel = channel
        self.label = label
        self.isLink = isLink
        channel.writeHighWaterMark = 0
        channel.onWritable = { [unowned self] in self.drain() }
    }

    /// Sends `frame` now, or queues it behind the frames waiting. False when the circuit's queue
    /// here is past its bound.
    func deliver(_ frame: FrameView) -> Bool {
        let id = frame.header.circuitID
        if turns.isEmpty && !channel.isWriteBlocked {
            channel.forward(frame)
            return true
        }
        if queues[id] == nil {
            queues[id] = CircuitQueue()
            turns.append(id)
        }
        queues[id]?.append(frame.raw)
        return (queues[id]?.bytes ?? 0) <= TransportLimits.circuitQueuePerHop
    }

    /// Bytes waiting here for `circuit` (for tests and the bound).
    func queued(for circuit: UInt64) -> Int { queues[circuit]?.bytes ?? 0 }

    /// Sends waiting frames, one per circuit in turn, while the connection keeps up.
    private func drain() {
        while !turns.isEmpty && !channel.isWriteBlocked && !channel.isClosed {
            if turn >= turns.count { turn = 0 }
            let id = turns[turn]
            guard let frame = queues[id]?.popFirst() else {
                forget(at: turn)
                continue
            }
            frame.withUnsafeBytes { channel.forward(raw: $0) }
            if queues[id]?.isEmpty == true { forget(at: turn) } else { turn += 1 }
        }
    }

    private func forget(at index: Int) {
        queues.removeValue(forKey: turns[index])
        turns.remove(at: index)
    }

    /// The circuit left this carrier (closed, or moved to another path): what waited for it goes.
    func dropQueue(_ circuit: UInt64) {
        guard queues.removeValue(forKey: circuit) != nil, let index = turns.firstIndex(of: circuit) else { return }
        turns.remove(at: index)
        if turn > index { turn -= 1 }
    }
}

/// One circuit's frames waiting at one carrier, oldest first.
struct CircuitQueue {
    private var frames: [[UInt8]] = []
    private var first = 0
    private(set) var bytes = 0

    var isEmpty: Bool { first == frames.count }

    mutating func append(_ raw: UnsafeRawBufferPointer) {
        frames.append(Array(raw))
        bytes += raw.count
    }

    mutating func popFirst() -> [UInt8]? {
        guard first < frames.count else { return nil }
        let frame = frames[first]
        first += 1
        bytes -= frame.count
        if first == frames.count {
            frames.removeAll(keepingCapacity: true)
            first = 0
        }
        return frame
    }
}

/// A circuit as this router sees it: the carrier towards the dialer and the one towards the
/// host (a tunneler or the next router on the path), and the session that allowed it.
struct RouterCircuit {
    let id: UInt64
    let service: String
    let dialer: String
    let host: String
    let dialSessionID: String
    let terminatorID: String
    /// nil while the link on that side is down and a new path is being set up.
    var dialerSide: CircuitCarrier?
    var hostSide: CircuitCarrier?
    /// Sides that have half-closed; the circuit is done when both have.
    var ended: Set<ObjectIdentifier> = []

    func isSide(_ carrier: CircuitCarrier) -> Bool { carrier === dialerSide || carrier === hostSide }

    func otherSide(of carrier: CircuitCarrier) -> CircuitCarrier? {
        if carrier === dialerSide { return hostSide }
        if carrier === hostSide { return dialerSide }
        return nil
    }

    var sides: [CircuitCarrier] { [dialerSide, hostSide].compactMap { $0 } }

    var report: CircuitReport {
        CircuitReport(id: id, service: service, dialer: dialer, host: host, dialSessionID: dialSessionID, terminatorID: terminatorID)
    }
}

struct RouterTerminator {
    let id: String
    let service: String
    let connection: EdgeConnection
    let sessionID: String
    let precedence: TerminatorPrecedence?
    let cost: Double?
}
