import Foundation

/// A permitted service as the controller describes it to a tunneler.
public struct ServiceGrant: Codable, Sendable, Equatable {
    public var name: String
    public var canDial: Bool
    public var canBind: Bool
    public var configs: [ConfigSpec]

    public init(name: String, canDial: Bool, canBind: Bool, configs: [ConfigSpec]) {
        self.name = name
        self.canDial = canDial
        self.canBind = canBind
        self.configs = configs
    }
}

/// An edge router a tunneler may connect to.
public struct RouterEndpoint: Codable, Sendable, Equatable {
    public var name: String
    public var edgeAddress: String

    public init(name: String, edgeAddress: String) {
        self.name = name
        self.edgeAddress = edgeAddress
    }
}

/// How a terminator ranks when a dial picks one (OpenZiti's terms): `required` terminators are
/// used while any is healthy, then `default` ones, then `failed` ones.
public enum TerminatorPrecedence: String, Codable, Sendable, Comparable {
    case required
    case `default`
    case failed

    private var rank: Int { self == .required ? 0 : self == .default ? 1 : 2 }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// A router another router should keep a link to.
public struct LinkTarget: Codable, Sendable, Equatable {
    public var name: String
    public var address: String
    public init(name: String, address: String) { self.name = name; self.address = address }
}

/// What the controller tells a router about its peers: the certificates to refuse (revoked and
/// not yet expired) on every listener and connection, and the routers that may link with it,
/// each with the fingerprint of the one certificate it holds now.
public struct PeerRoster: Codable, Sendable, Equatable {
    public var revokedCertificates: [String]
    public var linkPeers: [String: String]

    public init(revokedCertificates: [String], linkPeers: [String: String]) {
        self.revokedCertificates = revokedCertificates
        self.linkPeers = linkPeers
    }
}

/// A live circuit as a router reports it when it (re)connects to the controller.
public struct CircuitReport: Codable, Sendable, Equatable {
    public var id: UInt64
    public var service: String
    public var dialer: String
    public var host: String
    public var dialSessionID: String
    public var terminatorID: String

    public init(id: UInt64, service: String, dialer: String, host: String, dialSessionID: String, terminatorID: String) {
        self.id = id; self.service = service; self.dialer = dialer; self.host = host
        self.dialSessionID = dialSessionID; self.terminatorID = terminatorID
    }
}

/// Control-plane messages on framed channels (controller⇄router, controller⇄tunneler,
/// router⇄tunneler). They are small and rare, so they are JSON; data never travels this way.
public enum ControlMessage: Codable, Sendable {
    // replies
    case ok
    case failure(message: String)

    // tunneler → controller (client API)
    case authenticate
    case apiSession(token: String, identity: String, expiresAt: Date)
    case listServices(apiSession: String)
    case services([ServiceGrant], routers: [RouterEndpoint])
    case createSession(apiSession: String, service: String, type: SessionType)
    case session(token: String)
    /// A gateway hosting `service` asks what its callers may see; `.unchanged` when the view's
    /// generation is still `known`.
    case gatewayView(apiSession: String, service: String, known: String?)
    case gatewayViewIs(GatewayView)
    case unchanged
    /// A gateway reports the tool definitions it sees (`server__tool` → hash). Unknown tools are
    /// pinned as first seen; a changed hash waits for an operator's approval.
    case reportToolDefinitions(apiSession: String, service: String, hashes: [String: String])
    /// A gateway reports everything it offers, in parts that each fit a frame (`report` names the
    /// whole, `complete` ends it). Tools are pinned as each part arrives; the catalog is kept
    /// once complete.
    case reportCatalog(apiSession: String, service: String, report: String, entries: [CatalogEntry], complete: Bool)
    case auditEvents(apiSession: String, service: String, events: [GatewayAuditEvent])
    /// An LLM gateway reports what its calls used; the controller keeps it (it survives restarts).
    case llmUsage(apiSession: String, service: String, records: [LLMUsageRecord])
    /// A tunneler refused a circuit (its grant or its peer's handshake did not hold): for the audit trail.
    case circuitRefused(apiSession: String, circuitID: UInt64, reason: String)
    /// A tunneler hosting gateways publishes the public key (a JWK) its gateways sign their
    /// statements to upstreams with; the controller serves it in its JWKS.
    case publishAssertionKey(apiSession: String, jwk: JSONValue)
    /// An LLM gateway asks for today's and this month's spend per budget key.
    case llmSpend(apiSession: String, service: String)
    case llmSpendIs(LLMSpend)

    // router → controller
    case routerHello(edgeAddress: String, linkAddress: String?, circuits: [CircuitReport])
    case routerWelcome(revokedSessions: [String], roster: PeerRoster)
    case addTerminator(id: String, service: String, identity: String, sessionID: String,
                       precedence: TerminatorPrecedence?, cost: Double?)
    /// The hosting tunneler behind a terminator could not take a circuit (its service is down).
    case terminatorFailed(id: String, reason: String)
    case removeTerminator(id: String)
    case createCircuit(sessionID: String, service: String, dialer: String)
    /// `nextHop` is the router to send the circuit to, or nil when the terminator is local;
    /// `grant` is the signed `CircuitGrant` both tunnelers verify.
    case circuitRoute(circuitID: UInt64, terminatorID: String, hostIdentity: String, nextHop: String?, grant: String)
    case linkState(peer: String, up: Bool, latencyMs: Double?)
    case circuitClosed(circuitID: UInt64, reason: String)
    /// A link of this circuit's path failed; this router holds one end and waits for a new path.
    case circuitFault(circuitID: UInt64)
    /// A tunneler (`identity`) brought a circuit to this router after losing its own router.
    case reattachCircuit(circuitID: UInt64, identity: String, dialerSide: Bool)
    /// The controller's answer: the circuit as it stands, and the neighbour on its new path
    /// (nil when this router is now the circuit's other end as well).
    case reattached(CircuitReport, via: String?)

    // controller → router (pushed)
    case revoke(sessionIDs: [String], circuitIDs: [UInt64], reason: String)
    /// Certificates were revoked, or routers enrolled or went: the router's roster now.
    case peerRoster(PeerRoster)
    /// The links this router should dial (the others dial it).
    case linkTo([LinkTarget])
    /// A forwarding entry for one circuit on a router of its path other than the first:
    /// frames arrive from router `previous`; they leave to router `next`, or (last router) to
    /// the hosting tunneler of `terminatorID`.
    case installRoute(circuitID: UInt64, service: String, dialer: String, dialSessionID: String,
                      previous: String, next: String?, terminatorID: String?, grant: String)
    /// Reattaches one side of a circuit (the dialer's side when `dialerSide`) to the link to `via`.
    case reroute(circuitID: UInt64, dialerSide: Bool, via: String)
    /// The new path is complete: tell the tunneler to resend what is unacknowledged.
    case resumeCircuit(circuitID: UInt64)

    // controller → router and tunneler (pushed)
    /// Every controller of the network (control addresses): routers hold a channel to each,
    /// tunnelers fail over among them.
    case controllers(addresses: [String])

    // tunneler → router
    case bind(session: String, precedence: TerminatorPrecedence?, cost: Double?)
    case bound(terminatorID: String)
    case dial(session: String)
    case dialed(circuitID: UInt64, hostIdentity: String, grant: String)
    /// A tunneler whose router connection dropped brings one of its circuits to this router.
    case reattach(circuitID: UInt64, dialerSide: Bool)

    // router → hosting tunneler
    case incomingCircuit(circuitID: UInt64, service: String, caller: String, terminatorID: String, grant: String)
}

public struct ControlEnvelope: Codable, Sendable {
    /// Non-zero when the sender expects a reply carrying this id in `replyTo`.
    public var id: UInt32
    public var replyTo: UInt32
    public var message: ControlMessage

    public init(id: UInt32 = 0, replyTo: UInt32 = 0, message: ControlMessage) {
        self.id = id
        self.replyTo = replyTo
        self.message = message
    }
}
