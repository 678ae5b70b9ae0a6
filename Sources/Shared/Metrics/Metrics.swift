import ArgumentParser
import Prometheus

/// The process's metrics, in one Prometheus registry that `MetricsListener` serves. Names
/// follow Prometheus conventions: `portless_<component>_<what>_<unit>`, `_total` for counters.
public enum Metrics {
    public static let registry = PrometheusCollectorRegistry()

    public static func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
        labels.isEmpty ? registry.makeCounter(name: name, help: help) : registry.makeCounter(name: name, labels: labels, help: help)
    }

    public static func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        labels.isEmpty ? registry.makeGauge(name: name, help: help) : registry.makeGauge(name: name, labels: labels, help: help)
    }

    /// Latency buckets from 1 ms to 60 s: gateway calls range from a cache hit to a long completion.
    public static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    public static func histogram(_ name: String, _ help: String, _ labels: [(String, String)] = [],
                                 buckets: [Double] = latencyBuckets) -> ValueHistogram {
        registry.makeValueHistogram(name: name, labels: labels, buckets: buckets, help: help)
    }
}

/// `--metrics ADDRESS`, shared by every command that runs a process for long.
public struct MetricsOptions: ParsableArguments {
    @Option(help: "Serve Prometheus metrics at http://ADDRESS/metrics (host:port; a bare port means 127.0.0.1). Off when omitted.")
    public var metrics: String?

    public init() {}

    public func validate() throws { _ = try address() }

    public func address() throws -> SocketAddress? {
        guard let metrics else { return nil }
        if let port = Int(metrics) { return SocketAddress(host: "127.0.0.1", port: port) }
        do { return try SocketAddress(parsing: metrics) } catch { throw ValidationError("--metrics '\(metrics)': expected host:port or a port") }
    }
}
