import GatewayKit
import Shared

// What each request adds to the tunneler's /metrics.
extension MCPGateway {
    /// The request in /metrics. Its target is named only when it reached an upstream: a denied
    /// or unknown name is the caller's invention and stays out of the series.
    func observe(caller: Caller?, detail: [String: JSONValue]) {
        let outcome = detail["outcome"]?.stringValue ?? (detail["refused"] != nil ? "refused" : "ok")
        let target = detail["server"] != nil ? detail["target"]?.stringValue ?? "" : ""
        GatewayMetrics.request(gateway: "mcp", service: service, identity: caller?.identity ?? "", method: detail["method"]?.stringValue ?? "",
                               target: target, outcome: outcome, seconds: (detail["latencyMs"]?.numberValue ?? 0) / 1000)
    }
}
