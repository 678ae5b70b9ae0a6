import Shared

/// The gateway's line to the controller (through the hosting tunneler's client API).
public protocol GatewayControl: Sendable {
    /// The current view, or nil when its generation is still `known`.
    func fetchView(known: String?) async throws -> GatewayView?
    /// One part of what the gateway offers now (its tools' definitions with them); the last
    /// part of a report is `complete`.
    func reportCatalog(_ entries: [CatalogEntry], report: String, complete: Bool) async throws
    func audit(_ events: [GatewayAuditEvent]) async throws
}
