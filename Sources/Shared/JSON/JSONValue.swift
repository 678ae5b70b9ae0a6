import Foundation

/// Arbitrary JSON: config payloads, and every message the gateways pass through. Numbers keep
/// their text (`JSONNumber`), so nothing a gateway forwards changes value.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public static func number(_ value: Double) -> JSONValue { .number(JSONNumber(value)) }
    public static func number(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    /// The number as a Double (approximate above 2^53: use `intValue` or `int64Value` for integers).
    public var numberValue: Double? {
        if case .number(let number) = self { return number.doubleValue }
        return nil
    }

    /// The number when it is an integer that fits in Int, exactly; nil otherwise.
    public var intValue: Int? {
        if case .number(let number) = self { return number.intValue }
        return nil
    }

    public var int64Value: Int64? {
        if case .number(let number) = self { return number.int64Value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The same value with `key` set in its object (no change to a non-object).
    public func setting(_ key: String, _ value: JSONValue?) -> JSONValue {
        guard case .object(var object) = self else { return self }
        object[key] = value
        return .object(object)
    }

    /// Parses JSON text (strict, bounded; see `JSONParser`).
    public static func parse(_ data: Data) throws -> JSONValue { try JSONParser.parse(data) }

    /// Reads this value as a Codable type (a config's typed payload).
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: encoded())
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Containers first: some decoders (YAML) read a mapping as a scalar when asked for one.
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode([String: JSONValue].self) { self = .object(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int64.self) { self = .number(JSONNumber(value)) }
        else if let value = try? container.decode(UInt64.self) { self = .number(JSONNumber(value)) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else { self = .string(try container.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if let exact = value.int64Value { try container.encode(exact) }
            else if let exact = value.uint64Value { try container.encode(exact) }
            else { try container.encode(value.doubleValue) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue {
    /// A count a peer reports (tokens, indexes, seconds): its integer value clamped to
    /// 0...`limit`; 0 when absent or not a number. Never traps, whatever the peer sent.
    public func count(limit: Int = 1 << 40) -> Int {
        guard case .number(let number) = self else { return 0 }
        if let exact = number.int64Value { return Int(max(0, min(Int64(limit), exact))) }
        let value = number.doubleValue
        guard value.isFinite, value > 0 else { return 0 }
        return value >= Double(limit) ? limit : Int(value)
    }
}

extension Optional where Wrapped == JSONValue {
    /// `count` of a value that may be absent.
    public func count(limit: Int = 1 << 40) -> Int { self?.count(limit: limit) ?? 0 }
}
