import GatewayKit
import Shared

/// One request's line in the audit trail: who, which circuit, the route and why, the model,
/// tokens, cost, latency and guardrail verdicts. Never the prompt.
struct AuditRecord: Sendable {
    let caller: Caller
    let project: String?
    let requested: String
    var route: RoutingCascade.Decision?
    var ingress: Ingress = .chat
    var model: String?
    var provider: String?
    var usage = TokenUsage()
    var cost = 0.0
    var unpriced = false
    var verdicts: [String] = []
    var failures: [String] = []
    var budget: String?
    /// Why the request was refused before it was read (the person's token, or its absence).
    var refused: String?
    var status = 200
    var latencyMs = 0.0
    var streamed = false

    init(caller: Caller, project: String?, requested: String) {
        self.caller = caller; self.project = project; self.requested = requested
    }

    mutating func finish(reply: ChatReply?, elapsed: Duration, streamed: Bool = false) {
        if case .failure(let error)? = reply { status = error.status }
        let parts = elapsed.components
        latencyMs = Double(parts.seconds * 1_000_000 + parts.attoseconds / 1_000_000_000_000) / 1000
        self.streamed = streamed
    }

    func detail(traceID: String?) -> JSONValue {
        var detail: [String: JSONValue] = ["ingress": .string(ingress.rawValue), "requested": .string(requested), "status": .number(Double(status)),
                                           "latencyMs": .number(latencyMs), "inputTokens": .number(usage.input), "outputTokens": .number(usage.output),
                                           "costUSD": .number(cost), "streamed": .bool(streamed)]
        if usage.cachedInput > 0 { detail["cachedInputTokens"] = .number(usage.cachedInput) }
        if usage.cacheWrite > 0 { detail["cacheWriteTokens"] = .number(usage.cacheWrite) }
        if usage.reasoning > 0 { detail["reasoningTokens"] = .number(usage.reasoning) }
        if usage.estimated { detail["estimated"] = .bool(true) }
        if unpriced && model != nil { detail["unpriced"] = .bool(true) }
        if let model { detail["model"] = .string(model) }
        if let provider { detail["provider"] = .string(provider) }
        if let project { detail["project"] = .string(project) }
        if let route {
            detail["routeClass"] = route.routeClass.map { .string($0) } ?? .null
            detail["routeReason"] = .string(route.reason)
            detail["candidates"] = .array(route.models.map { .string($0) })
        }
        if !verdicts.isEmpty { detail["guardrails"] = .array(verdicts.map { .string($0) }) }
        if !failures.isEmpty { detail["failures"] = .array(failures.map { .string($0) }) }
        if let budget { detail["budget"] = .string(budget) }
        if let refused { detail["refused"] = .string(refused) }
        if let traceID { detail["traceId"] = .string(traceID) }
        return .object(detail)
    }
}
