import Foundation

/// Decodes a `StoreRecord` from a row: scalars natively, dates from either backend's form,
/// anything else from JSON text or (string enums) the text itself.
struct RecordDecoder: Decoder {
    let row: SQLRow
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Columns<Key>(row: row))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: [], debugDescription: "a row is keyed by column"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: [], debugDescription: "a row is keyed by column"))
    }

    private struct Columns<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let row: SQLRow
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { row.names.compactMap(Key.init(stringValue:)) }

        func contains(_ key: Key) -> Bool { row.names.contains(key.stringValue.lowercased()) }
        func decodeNil(forKey key: Key) throws -> Bool { row.value(key.stringValue).isNull }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try row.bool(key.stringValue) }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try row.string(key.stringValue) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try row.double(key.stringValue) }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try row.double(key.stringValue)) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(key) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(key) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(key) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(key) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try row.int64(key.stringValue) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(key) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(key) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(key) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(key) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(key) }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let column = key.stringValue
            if T.self == Date.self, let date = try row.date(column) as? T { return date }
            let text = try row.string(column)
            if let value = try? JSONDecoder().decode(T.self, from: Data(text.utf8)) { return value }
            return try T(from: TextDecoder(text: text))
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            throw DecodingError.typeMismatch(type, .init(codingPath: [key], debugDescription: "a column holds no nested container"))
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: [key], debugDescription: "a column holds no nested container"))
        }

        func superDecoder() throws -> any Decoder { RecordDecoder(row: row) }
        func superDecoder(forKey key: Key) throws -> any Decoder { RecordDecoder(row: row) }

        private func integer<T: FixedWidthInteger>(_ key: Key) throws -> T {
            let value = try row.int64(key.stringValue)
            guard let exact = T(exactly: value) else {
                throw SQLDecodingError(column: key.stringValue, expected: "\(T.self)", found: .integer(value))
            }
            return exact
        }
    }

    /// Hands a column's text to a type that decodes from a single string (a string enum).
    private struct TextDecoder: Decoder, SingleValueDecodingContainer {
        let text: String
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> { throw mismatch(type) }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw mismatch([Any].self) }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { self }
        func decodeNil() -> Bool { false }
        func decode(_ type: String.Type) throws -> String { text }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            if let text = text as? T { return text }
            throw mismatch(type)
        }
        private func mismatch(_ type: Any.Type) -> DecodingError {
            .typeMismatch(type, .init(codingPath: [], debugDescription: "column text '\(text.prefix(40))' is not a \(type)"))
        }
    }
}

/// The columns of a `StoreRecord`, in declaration order; a nil optional is a NULL column (so an
/// update clears it), not an absent one.
enum RecordEncoder {
    static func columns<R: Encodable>(of record: R) throws -> [(name: String, value: SQLValue)] {
        let collector = Collector()
        try record.encode(to: ColumnEncoder(collector: collector))
        return collector.columns
    }

    fileprivate final class Collector {
        var columns: [(name: String, value: SQLValue)] = []
    }

    private struct ColumnEncoder: Encoder {
        let collector: Collector
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(Columns<Key>(collector: collector))
        }
        func unkeyedContainer() -> any UnkeyedEncodingContainer { Unsupported() }
        func singleValueContainer() -> any SingleValueEncodingContainer { Unsupported() }
    }

    private struct Columns<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let collector: Collector
        var codingPath: [any CodingKey] { [] }

        private func put(_ value: SQLValue, _ key: Key) { collector.columns.append((key.stringValue, value)) }

        mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { put(.boolean(value), key) }
        mutating func encode(_ value: String, forKey key: Key) throws { put(.text(value), key) }
        mutating func encode(_ value: Double, forKey key: Key) throws { put(.real(value), key) }
        mutating func encode(_ value: Float, forKey key: Key) throws { put(.real(Double(value)), key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { put(.integer(Int64(value)), key) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { put(.integer(Int64(value)), key) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { put(.integer(Int64(value)), key) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { put(.integer(Int64(value)), key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { put(.integer(value), key) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { try encode(Int64(exactly: value), key) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { put(.integer(Int64(value)), key) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { put(.integer(Int64(value)), key) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { put(.integer(Int64(value)), key) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { try encode(Int64(exactly: value), key) }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            if let date = value as? Date { return put(.date(date), key) }
            if let raw = value as? any RawRepresentable, let text = raw.rawValue as? String { return put(.text(text), key) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            put(.text(String(decoding: try encoder.encode(value), as: UTF8.self)), key)
        }

        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { put(.null, key) } }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { put(.null, key) } }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { put(.null, key) } }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { put(.null, key) } }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { if let value { try encode(value, forKey: key) } else { put(.null, key) } }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) } else { put(.null, key) }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            KeyedEncodingContainer(Columns<NestedKey>(collector: Collector()))
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { Unsupported() }
        mutating func superEncoder() -> any Encoder { ColumnEncoder(collector: collector) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { ColumnEncoder(collector: collector) }

        private func encode(_ value: Int64?, _ key: Key) throws {
            guard let value else { throw EncodingError.invalidValue(key.stringValue, .init(codingPath: [key], debugDescription: "out of range for a column")) }
            put(.integer(value), key)
        }
    }

    /// Records are flat: nothing encodes a bare value or a list at the top level.
    private struct Unsupported: UnkeyedEncodingContainer, SingleValueEncodingContainer {
        var codingPath: [any CodingKey] { [] }
        var count: Int { 0 }
        private func refuse() -> EncodingError { .invalidValue(0, .init(codingPath: [], debugDescription: "a store record encodes keyed columns only")) }
        mutating func encodeNil() throws { throw refuse() }
        mutating func encode<T: Encodable>(_ value: T) throws { throw refuse() }
        mutating func encode(_ value: Bool) throws { throw refuse() }
        mutating func encode(_ value: String) throws { throw refuse() }
        mutating func encode(_ value: Double) throws { throw refuse() }
        mutating func encode(_ value: Float) throws { throw refuse() }
        mutating func encode(_ value: Int) throws { throw refuse() }
        mutating func encode(_ value: Int8) throws { throw refuse() }
        mutating func encode(_ value: Int16) throws { throw refuse() }
        mutating func encode(_ value: Int32) throws { throw refuse() }
        mutating func encode(_ value: Int64) throws { throw refuse() }
        mutating func encode(_ value: UInt) throws { throw refuse() }
        mutating func encode(_ value: UInt8) throws { throw refuse() }
        mutating func encode(_ value: UInt16) throws { throw refuse() }
        mutating func encode(_ value: UInt32) throws { throw refuse() }
        mutating func encode(_ value: UInt64) throws { throw refuse() }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            KeyedEncodingContainer(Columns<NestedKey>(collector: Collector()))
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { self }
        mutating func superEncoder() -> any Encoder { ColumnEncoder(collector: Collector()) }
    }
}
