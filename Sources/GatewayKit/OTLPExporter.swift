import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Shared

/// Sends finished spans to an OpenTelemetry collector over OTLP/HTTP (JSON encoding), in
/// batches: every second, or at once when 512 wait. A collector that is down or slow costs
/// nothing but the spans: at most 8,192 wait, the oldest go first, and each post has 5 s.
public final class OTLPExporter: Sendable {
    public let endpoint: String
    private let resource: JSONValue
    private let pending = Locked<[SpanRecord]>([])
    private let logger: Logger
    static let maxPending = 8_192
    static let batch = 512

    private static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// `endpoint`: the full URL spans are posted to (…/v1/traces).
    public init(endpoint: String, serviceName: String, attributes: [(String, String)] = [], logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
        let all = [("service.name", serviceName)] + attributes
        resource = .object(["attributes": .array(all.map { .object(["key": .string($0.0), "value": .object(["stringValue": .string($0.1)])]) })])
        Task { [weak self] in
            while let exporter = self {
                try? await Task.sleep(for: .seconds(1))
                await exporter.flush()
            }
        }
    }

    public func export(_ span: SpanRecord) {
        let full = pending.withLock { spans in
            if spans.count >= Self.maxPending { spans.removeFirst(spans.count - Self.maxPending + 1) }
            spans.append(span)
            return spans.count >= Self.batch
        }
        if full { Task { await self.flush() } }
    }

    /// Posts what waits; returns when the collector answered (or 5 s passed).
    public func flush() async {
        let spans = pending.withLock { spans -> [SpanRecord] in
            defer { spans.removeAll(keepingCapacity: true) }
            return spans
        }
        guard !spans.isEmpty else { return }
        let body: JSONValue = .object(["resourceSpans": .array([.object([
            "resource": resource,
            "scopeSpans": .array([.object(["scope": .object(["name": .string("portless")]), "spans": .array(spans.map(\.otlp))])]),
        ])])])
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body.encoded()))
        do {
            let response = try await Self.client.execute(request, timeout: .seconds(5))
            _ = try? await response.body.collect(upTo: 1 << 20)
            if !(200..<300).contains(Int(response.status.code)) {
                logger.warning("the trace collector refused spans", metadata: ["status": "\(response.status.code)", "spans": "\(spans.count)"])
            }
        } catch {
            logger.warning("the trace collector is unreachable; spans dropped", metadata: ["error": "\(error)", "spans": "\(spans.count)"])
        }
    }
}
