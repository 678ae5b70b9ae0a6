/// A JSON number as it was written. The text is kept, so integers beyond 2^53 (request ids,
/// 64-bit counters, snowflake ids) and decimals pass through a gateway exactly; arithmetic
/// reads it as `Int64`, `UInt64` or `Double` on demand.
public struct JSONNumber: Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    /// The number's JSON text (always valid JSON number syntax).
    public let text: String

    /// `text` must already be valid JSON number syntax (the parser's job).
    init(validText text: String) { self.text = text }

    public init(_ value: Int) { text = String(value) }
    public init(_ value: Int64) { text = String(value) }
    public init(_ value: UInt64) { text = String(value) }
    public init(integerLiteral value: Int) { text = String(value) }
    public init(floatLiteral value: Double) { self.init(value) }

    /// Integral doubles are written without a fraction (`3`, not `3.0`); non-finite values,
    /// which JSON cannot express, become 0.
    public init(_ value: Double) {
        if !value.isFinite { text = "0" }
        else if value == value.rounded(), abs(value) < 1e15 { text = String(Int64(value)) }
        else { text = "\(value)" }
    }

    /// Parses `text` as a JSON number; nil when it is not one.
    public init?(text: String) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.withUnsafeBytes({ JSONParser.numberLength(in: $0, at: 0) == $0.count }) else { return nil }
        self.text = text
    }

    public var isInteger: Bool { !text.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") } }
    public var doubleValue: Double { Double(text) ?? 0 }
    /// The value when it is an integer that fits; nil otherwise (never rounded).
    public var int64Value: Int64? { isInteger ? Int64(text) : nil }
    public var uint64Value: UInt64? { isInteger ? UInt64(text) : nil }
    public var intValue: Int? { isInteger ? Int(text) : nil }
    public var description: String { text }
}

extension JSONNumber: Equatable {
    /// Numerically equal: `1` equals `1.0`; two integers compare exactly, whatever their size.
    public static func == (a: JSONNumber, b: JSONNumber) -> Bool {
        if a.text == b.text { return true }
        if a.isInteger, b.isInteger {
            if let x = Int64(a.text), let y = Int64(b.text) { return x == y }
            if let x = UInt64(a.text), let y = UInt64(b.text) { return x == y }
        }
        return a.doubleValue == b.doubleValue
    }
}
