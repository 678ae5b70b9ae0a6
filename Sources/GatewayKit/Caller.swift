/// Who is asking: the identity the tunneler verified (from its certificate, through the E2E
/// handshake) and the circuit that carried the request.
public struct Caller: Sendable, Equatable, Hashable {
    public var identity: String
    public var circuit: UInt64?

    public init(identity: String, circuit: UInt64?) {
        self.identity = identity
        self.circuit = circuit
    }
}
