import Shared

/// One tunneler's connection to this router. Loop-confined.
final class EdgeConnection {
    let control: ControlPeer
    let identity: String
    let carrier: CircuitCarrier
    var terminators: Set<String> = []

    init(control: ControlPeer, identity: String) {
        self.control = control
        self.identity = identity
        carrier = CircuitCarrier(channel: control.channel, label: "identity '\(identity)'", isLink: false)
    }

    var channel: FramedChannel { control.channel }
}
