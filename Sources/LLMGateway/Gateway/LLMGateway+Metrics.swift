import GatewayKit
import Shared

// What each request adds to the tunneler's /metrics.
extension LLMGateway {
    /// The request in /metrics. Its target is the model that answered (never the name a caller
    /// asked for, which may be anything).
    func observe(_ record: AuditRecord) {
        let identity = record.caller.identity
        GatewayMetrics.request(gateway: "llm", service: service, identity: identity, method: record.ingress.rawValue,
                               target: record.model ?? "", outcome: record.status < 400 ? "ok" : String(record.status),
                               seconds: record.latencyMs / 1000)
        if let model = record.model, let provider = record.provider {
            GatewayMetrics.usage(service: service, identity: identity, model: model, provider: provider,
                                 input: record.usage.input, output: record.usage.output, costUSD: record.cost)
        }
        if record.budget != nil { GatewayMetrics.budgetRefused(service: service, identity: identity) }
        for verdict in record.verdicts {
            let guardrail = verdict.prefix { $0 != " " }
            let action = verdict.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            GatewayMetrics.guardrail(service: service, guardrail: String(guardrail), action: action)
        }
    }
}
