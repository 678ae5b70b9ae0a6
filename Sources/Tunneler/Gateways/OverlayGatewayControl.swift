import Foundation
import GatewayKit
import LLMGateway
import MCPGateway
import Shared

/// A hosted gateway's line to the controller: the tunneler's own client-API connection,
/// reached on the tunneler's loop.
final class OverlayGatewayControl: LLMGatewayControl {
    private let service: String
    private let client = Locked<LoopBound<ControllerClient>?>(nil)

    init(service: String) { self.service = service }

    /// Set once the tunnel (and its controller connection) exists.
    func attach(_ controller: LoopBound<ControllerClient>) { client.withLock { $0 = controller } }

    /// The tunneler's loop has stopped: calls fail at once instead of waiting for it.
    func detach() { client.withLock { $0 = nil } }

    func fetchView(known: String?) async throws -> GatewayView? {
        let service = self.service
        return try await onLoop { client, done in client.gatewayView(service: service, known: known, done) }
    }

    func reportCatalog(_ entries: [CatalogEntry], report: String, complete: Bool) async throws {
        let service = self.service
        try await onLoop { client, done in client.reportCatalog(service: service, report: report, entries: entries, complete: complete, done) }
    }

    // Batches are encoded here, on the caller's task: the loop they are sent from carries every circuit.
    func audit(_ events: [GatewayAuditEvent]) async throws {
        let service = self.service
        let encoded = try ControlMessageJSON.encode(events)
        try await onLoop { client, done in client.auditEvents(service: service, events: encoded, done) }
    }

    func reportUsage(_ records: [LLMUsageRecord]) async throws {
        let service = self.service
        let encoded = try ControlMessageJSON.encode(records)
        try await onLoop { client, done in client.llmUsage(service: service, records: encoded, done) }
    }

    func spend() async throws -> LLMSpend {
        let service = self.service
        return try await onLoop { client, done in client.llmSpend(service: service, done) }
    }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (ControllerClient, @escaping (Result<T, Error>) -> Void) -> Void) async throws -> T {
        guard let bound = client.current else { throw ControlError.refused("the tunneler is not connected to the controller yet") }
        return try await withCheckedThrowingContinuation { continuation in
            bound.loop.execute {
                body(bound.value) { continuation.resume(with: $0) }
            }
        }
    }
}
