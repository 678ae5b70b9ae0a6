import Foundation

/// A W3C Trace Context position (`traceparent: 00-<trace id>-<span id>-<flags>`): the trace a
/// request belongs to and the span that is its parent. `current` is the span a task works in;
/// whatever it calls downstream carries it on.
public struct TraceContext: Sendable, Equatable {
    /// 32 lowercase hex digits, not all zero.
    public let traceID: String
    /// 16 lowercase hex digits, not all zero.
    public let spanID: String
    public let sampled: Bool

    @TaskLocal public static var current: TraceContext?

    public init(traceID: String, spanID: String, sampled: Bool = true) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// Parses a `traceparent` header (version 00, or a later version read as 00 allows);
    /// nil when it is malformed, which the spec says to treat as absent.
    public init?(traceparent: String) {
        let parts = traceparent.trimmingCharacters(in: .whitespaces).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].count == 2, Self.isHex(parts[0]), parts[0] != "ff",
              parts[0] != "00" || parts.count == 4,
              parts[1].count == 32, Self.isHex(parts[1]), parts[1] != Substring(String(repeating: "0", count: 32)),
              parts[2].count == 16, Self.isHex(parts[2]), parts[2] != Substring(String(repeating: "0", count: 16)),
              parts[3].count == 2, Self.isHex(parts[3]), let flags = UInt8(parts[3], radix: 16) else { return nil }
        self.init(traceID: String(parts[1]), spanID: String(parts[2]), sampled: flags & 1 == 1)
    }

    public var traceparent: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }

    /// A new span in this trace.
    public func child() -> TraceContext { TraceContext(traceID: traceID, spanID: Self.randomHex(bytes: 8), sampled: sampled) }

    /// The first span of a new trace.
    public static func root() -> TraceContext { TraceContext(traceID: randomHex(bytes: 16), spanID: randomHex(bytes: 8)) }

    private static func isHex(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func randomHex(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if bytes.allSatisfy({ $0 == 0 }) { bytes[count - 1] = 1 }
        return Hex.encode(bytes)
    }
}
