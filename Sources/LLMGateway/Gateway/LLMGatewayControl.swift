import GatewayKit
import Shared

/// What the LLM gateway needs from the controller besides its view and the audit trail.
public protocol LLMGatewayControl: GatewayControl {
    func reportUsage(_ records: [LLMUsageRecord]) async throws
    func spend() async throws -> LLMSpend
}
