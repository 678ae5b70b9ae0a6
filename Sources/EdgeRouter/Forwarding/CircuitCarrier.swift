import Shared

/// A channel that carries circuit frames: a tunneler's edge connection or a link to another
/// router. Forwarding deals only in carriers. Loop-confined.
final class CircuitCarrier {
    let channel: FramedChannel
    /// Who is at the other end, for logs: "identity 'alice'" or "router 'r2'".
    let label: String
    /// A link to another router (else a tunneler's edge connection).
    let isLink: Bool
    /// Carriers paused because this one's write queue is full; resumed when it drains.
    var blockedSources: [ObjectIdentifier: CircuitCarrier] = [:]
    var circuits: Set<UInt64> = []

    init(channel: FramedChannel, label: String, isLink: Bool) {
        self.channel = channel
        self.label = label
        self.isLink = isLink
        channel.onWritable = { [unowned self] in self.resumeBlockedSources() }
    }

    /// Pauses `source` until this carrier's queue drains.
    func block(_ source: CircuitCarrier) {
        guard !source.channel.isPaused else { return }
        source.channel.pauseReading()
        blockedSources[ObjectIdentifier(source)] = source
    }

    func resumeBlockedSources() {
        let sources = blockedSources.values
        blockedSources.removeAll()
        for source in sources { source.channel.resumeReading() }
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
