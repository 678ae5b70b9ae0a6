import Prometheus
import Shared

/// What the MCP and LLM gateways expose at their tunneler's /metrics.
///
/// Label values come from authenticated identities and from names the gateway's own
/// configuration knows (its tools, models, providers, upstreams) — never from what a caller
/// merely asked for, so a caller cannot grow the series without bound by inventing names.
public enum GatewayMetrics {
    /// One gateway request: `target` is the tool, resource, prompt or model it reached ("" when none).
    public static func request(gateway: String, service: String, identity: String, method: String, target: String, outcome: String,
                               seconds: Double) {
        // Handles are kept by their labels: the registry's own lookup validates and re-hashes
        // every label on each call, which cost more than the rest of recording a request.
        let series = RequestSeries(gateway: gateway, service: service, identity: identity, method: method, target: target, outcome: outcome)
        let (counter, histogram) = requests.withLock { known in
            if let handles = known[series] { return handles }
            let handles = (Metrics.counter("portless_gateway_requests_total", "Gateway requests by caller, method, target and outcome",
                                           [("gateway", gateway), ("service", service), ("identity", identity), ("method", method),
                                            ("target", target), ("outcome", outcome)]),
                           Metrics.histogram("portless_gateway_request_duration_seconds", "Time from a gateway request's arrival to its answer",
                                             [("gateway", gateway), ("service", service), ("method", method)]))
            known[series] = handles
            return handles
        }
        counter.increment()
        histogram.record(seconds)
    }

    private struct RequestSeries: Hashable {
        let gateway, service, identity, method, target, outcome: String
    }

    private struct UsageSeries: Hashable {
        let service, identity, model, provider: String
    }

    private static let requests = Locked<[RequestSeries: (Counter, ValueHistogram)]>([:])
    private static let usages = Locked<[UsageSeries: (input: Counter, output: Counter, cost: Counter)]>([:])

    /// Tokens and cost of one model call.
    public static func usage(service: String, identity: String, model: String, provider: String, input: Int, output: Int, costUSD: Double) {
        let series = UsageSeries(service: service, identity: identity, model: model, provider: provider)
        let handles = usages.withLock { known in
            if let handles = known[series] { return handles }
            let labels = [("service", service), ("identity", identity), ("model", model), ("provider", provider)]
            let handles = (input: Metrics.counter("portless_llm_tokens_total", "Model tokens by caller, model and provider", labels + [("kind", "input")]),
                           output: Metrics.counter("portless_llm_tokens_total", "Model tokens by caller, model and provider", labels + [("kind", "output")]),
                           cost: Metrics.counter("portless_llm_cost_usd_total", "Cost of model calls in US dollars, by caller, model and provider", labels))
            known[series] = handles
            return handles
        }
        handles.input.increment(by: Int64(input))
        handles.output.increment(by: Int64(output))
        if costUSD > 0 { handles.cost.increment(by: costUSD) }
    }

    public static func budgetRefused(service: String, identity: String) {
        Metrics.counter("portless_llm_budget_refusals_total", "Requests refused because a budget was spent",
                        [("service", service), ("identity", identity)]).increment()
    }

    /// A guardrail's verdict: `guardrail` is pii, injection or topic; `action` what it did.
    public static func guardrail(service: String, guardrail: String, action: String) {
        Metrics.counter("portless_llm_guardrail_verdicts_total", "Guardrail verdicts by guardrail and action",
                        [("service", service), ("guardrail", guardrail), ("action", action)]).increment()
    }

    /// Whether an upstream (an MCP server, a model provider) is answering: 1 or 0.
    public static func upstream(gateway: String, service: String, upstream: String, up: Bool) {
        Metrics.gauge("portless_gateway_upstream_up", "1 while the gateway's upstream answers, 0 while it is failing",
                      [("gateway", gateway), ("service", service), ("upstream", upstream)]).set(to: up ? 1.0 : 0.0)
    }

    public static func upstreamFailure(gateway: String, service: String, upstream: String) {
        Metrics.counter("portless_gateway_upstream_failures_total", "Calls to an upstream that failed",
                        [("gateway", gateway), ("service", service), ("upstream", upstream)]).increment()
    }
}
