import GatewayKit
import Shared

/// Whom an upstream's messages about one request reach: the caller who made it, and only that
/// caller. Progress, log messages and the server's own requests (sampling, elicitation, roots)
/// during the request are handed to these closures; nothing here is ever broadcast.
struct RequestContext: Sendable {
    /// Who made the request: a session id, or identity and circuit for a stateless caller. A
    /// message the transport cannot tie to one request (stdio has no request ids on
    /// notifications) reaches its owner only when every request in flight on that upstream has
    /// the same owner; otherwise it reaches no one.
    var owner: String
    var onProgress: (@Sendable (JSONValue) -> Void)?
    /// `notifications/message` params about this request.
    var onLog: (@Sendable (JSONValue) -> Void)?
    /// A request the server makes of the client while this request runs.
    var onServerRequest: (@Sendable (_ method: String, _ params: JSONValue?) async -> Result<JSONValue, RPCError>)?
    /// The caller's capabilities, passed to upstreams of the stateless revision per request.
    var clientCapabilities: JSONValue = .object([:])
    /// The caller's opt-in to log messages on the stateless revision (`io.modelcontextprotocol/logLevel`).
    var logLevel: String?
    /// The gateway's signed statement of who this request is for (`AssertionSigner`): in
    /// `_meta` for every upstream, and as a header for HTTP ones.
    var assertion: String?

    init(owner: String) { self.owner = owner }

    /// The gateway's own requests (listing, subscribing): nobody to relay anything to.
    static let gateway = RequestContext(owner: "portless-gateway")
}
