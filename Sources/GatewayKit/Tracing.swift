import Foundation
import Logging
import Shared

/// Spans for gateway requests and circuit dials. A caller's `traceparent` makes a span its
/// child, and is passed on (as this span) to upstreams and providers whether or not spans are
/// exported; spans themselves are sent only when a collector is configured.
public enum Tracing {
    private static let configured = Locked<OTLPExporter?>(nil)

    public static var exporter: OTLPExporter? { configured.current }

    /// Where spans go: `--otlp-endpoint` (a base URL: spans go to its /v1/traces), else the
    /// standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or `OTEL_EXPORTER_OTLP_ENDPOINT`.
    public static func configure(endpoint option: String?, serviceName: String, identity: String, logger: Logger) {
        let environment = ProcessInfo.processInfo.environment
        let url: String?
        if let option, !option.isEmpty {
            url = option.hasSuffix("/v1/traces") ? option : option.trimmingSuffix("/") + "/v1/traces"
        } else if let traces = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], !traces.isEmpty {
            url = traces
        } else if let base = environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !base.isEmpty {
            url = base.trimmingSuffix("/") + "/v1/traces"
        } else {
            url = nil
        }
        guard let url else { return }
        logger.info("exporting traces", metadata: ["endpoint": "\(url)"])
        configured.withLock { $0 = OTLPExporter(endpoint: url, serviceName: serviceName, attributes: [("portless.identity", identity)], logger: logger) }
    }

    /// Runs `body` in a new span: the child of `parent` (a caller's), else the first of a new
    /// trace when spans are exported, else no span at all. Inside, `TraceContext.current` is it.
    public static func withSpan<T>(_ name: String, parent: TraceContext?, kind: SpanRecord.Kind = .server, attributes: [(String, String)],
                                   _ body: (SpanAttributes) async throws -> T) async rethrows -> T {
        let exporter = self.exporter
        guard let context = parent?.child() ?? (exporter != nil ? TraceContext.root() : nil) else {
            return try await body(SpanAttributes())
        }
        let recorded = SpanAttributes(attributes)
        let start = SpanRecord.now()
        defer {
            if let exporter, context.sampled {
                exporter.export(SpanRecord(name: name, context: context, parentSpanID: parent?.spanID, kind: kind, startNanos: start,
                                           endNanos: SpanRecord.now(), attributes: recorded.all, failed: recorded.failed))
            }
        }
        return try await TraceContext.$current.withValue(context) { try await body(recorded) }
    }

    /// A span for work that ends in a callback rather than an `await` (a dial on the event loop).
    public static func start(_ name: String, kind: SpanRecord.Kind = .client, attributes: [(String, String)]) -> OpenSpan? {
        guard let exporter else { return nil }
        return OpenSpan(name: name, kind: kind, exporter: exporter, attributes: attributes)
    }
}

/// What a span learns while it runs: attributes, and whether it failed.
public final class SpanAttributes: Sendable {
    private let state: Locked<(attributes: [(String, String)], failed: Bool)>

    init(_ attributes: [(String, String)] = []) { state = Locked((attributes, false)) }

    public func set(_ key: String, _ value: String) { state.withLock { $0.attributes.append((key, value)) } }
    public func fail() { state.withLock { $0.failed = true } }

    var all: [(String, String)] { state.current.attributes }
    var failed: Bool { state.current.failed }
}

/// A span begun and ended by hand.
public final class OpenSpan {
    public let context = TraceContext.root()
    private let name: String
    private let kind: SpanRecord.Kind
    private let exporter: OTLPExporter
    private var attributes: [(String, String)]
    private let start = SpanRecord.now()
    private var ended = false

    init(name: String, kind: SpanRecord.Kind, exporter: OTLPExporter, attributes: [(String, String)]) {
        self.name = name
        self.kind = kind
        self.exporter = exporter
        self.attributes = attributes
    }

    public func end(failed: Bool = false, attributes more: [(String, String)] = []) {
        guard !ended else { return }
        ended = true
        exporter.export(SpanRecord(name: name, context: context, parentSpanID: nil, kind: kind, startNanos: start, endNanos: SpanRecord.now(),
                                   attributes: attributes + more, failed: failed))
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
