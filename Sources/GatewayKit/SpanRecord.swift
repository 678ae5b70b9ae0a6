import Foundation
import Shared

/// A finished span, as OTLP describes one.
public struct SpanRecord: Sendable {
    public enum Kind: Int, Sendable { case `internal` = 1, server = 2, client = 3 }

    public var name: String
    public var context: TraceContext
    public var parentSpanID: String?
    public var kind: Kind
    public var startNanos: UInt64
    public var endNanos: UInt64
    public var attributes: [(String, String)]
    public var failed: Bool

    /// Its OTLP/JSON form (ids in hex, times in nanoseconds as strings, as the protobuf JSON mapping has them).
    var otlp: JSONValue {
        var span: [String: JSONValue] = [
            "traceId": .string(context.traceID), "spanId": .string(context.spanID), "name": .string(name),
            "kind": .number(Double(kind.rawValue)),
            "startTimeUnixNano": .string(String(startNanos)), "endTimeUnixNano": .string(String(endNanos)),
            "attributes": .array(attributes.map { .object(["key": .string($0.0), "value": .object(["stringValue": .string($0.1)])]) }),
            "status": .object(["code": .number(failed ? 2 : 1)]),
        ]
        if let parentSpanID { span["parentSpanId"] = .string(parentSpanID) }
        return .object(span)
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
