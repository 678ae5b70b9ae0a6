import Shared

/// The gateway's line to the controller (through the hosting tunneler's client API).
public protocol GatewayControl: Sendable {
    /// The current view, or nil when its generation is still `known`.
    func fetchView(known: String?) async throws -> GatewayView?
    /// The tool definitions the gateway sees now, `server__tool` → hash.
    func reportDefinitions(_ hashes: [String: String]) async throws
    func audit(_ events: [GatewayAuditEvent]) async throws
}
