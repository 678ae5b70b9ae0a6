import Shared

/// A link to another router: mTLS with router certificates on both ends, heartbeats every
/// `probeIntervalMs` measuring latency, and the circuit frames of every circuit routed over it.
final class RouterLink {
    static let probeIntervalMs: UInt64 = 1_000

    let peer: String
    /// The fingerprint of the certificate the peer router linked with.
    let certificate: String
    let control: ControlPeer
    let carrier: CircuitCarrier
    /// Whether this router dialed the link (and so redials it when it drops).
    let dialed: Bool
    private(set) var latencyMs: Double?

    init(peer: String, certificate: String, control: ControlPeer, dialed: Bool) {
        self.peer = peer
        self.certificate = certificate
        self.control = control
        self.dialed = dialed
        carrier = CircuitCarrier(channel: control.channel, label: "router '\(peer)'", isLink: true)
    }

    /// Smooths probes so one slow heartbeat does not swing paths.
    func record(roundTrip ms: Double) {
        latencyMs = latencyMs.map { 0.8 * $0 + 0.2 * ms } ?? ms
    }
}
