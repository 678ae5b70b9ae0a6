import Shared

/// One tunneler's connection to this router. Loop-confined.
final class EdgeConnection {
    let control: ControlPeer
    let identity: String
    /// The fingerprint of the certificate it connected with (refused once revoked).
    let certificate: String
    let carrier: CircuitCarrier
    var terminators: Set<String> = []

    init(control: ControlPeer, identity: String, certificate: String) {
        self.control = control
        self.identity = identity
        self.certificate = certificate
        carrier = CircuitCarrier(channel: control.channel, label: "identity '\(identity)'", isLink: false)
    }

    var channel: FramedChannel { control.channel }
}
