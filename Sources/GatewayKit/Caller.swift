import Shared

/// Who is asking: the identity the tunneler verified (from its certificate, through the E2E
/// handshake), the circuit that carried the request, and — when the agent presented their token
/// and a delegation policy allows it — the person it acts for.
public struct Caller: Sendable, Equatable, Hashable {
    public var identity: String
    public var circuit: UInt64?
    public var person: Person?

    public init(identity: String, circuit: UInt64?, person: Person? = nil) {
        self.identity = identity
        self.circuit = circuit
        self.person = person
    }

    /// The same agent acting for the same person (a session belongs to both).
    public func isSameParty(as other: Caller) -> Bool {
        identity == other.identity && person?.name == other.person?.name && person?.issuer == other.person?.issuer
    }

    /// Names the party (agent, and person if any) for state kept between requests.
    public var partyKey: String {
        guard let person else { return identity }
        return identity + "\u{1F}" + person.issuer + "\u{1F}" + person.name
    }

    /// For logs and errors: "agent 'a'" or "agent 'a' for person 'alice'".
    public var description: String { person.map { "agent '\(identity)' for person '\($0.name)'" } ?? "agent '\(identity)'" }
}
