import Shared

/// One tunneler's connection to this router. Loop-confined.
final class EdgeConnection {
    let control: ControlPeer
    let identity: String
    /// Connections paused because this one's write queue is full; resumed when it drains.
    var blockedSources: [ObjectIdentifier: EdgeConnection] = [:]
    var circuits: Set<UInt64> = []
    var terminators: Set<String> = []

    init(control: ControlPeer, identity: String) {
        self.control = control
        self.identity = identity
    }

    var channel: FramedChannel { control.channel }
}

/// A circuit as this router sees it: two endpoints and the sessions that allowed it.
struct RouterCircuit {
    let id: UInt64
    let service: String
    let dialer: EdgeConnection
    let host: EdgeConnection
    let dialSessionID: String
    let terminatorID: String

    var report: CircuitReport {
        CircuitReport(id: id, service: service, dialer: dialer.identity, host: host.identity,
                      dialSessionID: dialSessionID, terminatorID: terminatorID)
    }
    /// Sides that have half-closed; the circuit is done when both have.
    var ended: Set<ObjectIdentifier> = []

    func peer(of connection: EdgeConnection) -> EdgeConnection? {
        if connection === dialer { return host }
        if connection === host { return dialer }
        return nil
    }
}

struct RouterTerminator {
    let id: String
    let service: String
    let connection: EdgeConnection
    let sessionID: String
}
