import Foundation
import Shared

extension JSONValue {
    public static let decoder = JSONDecoder()
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return encoder
    }()

    public static func parse(_ data: Data) throws -> JSONValue {
        try decoder.decode(JSONValue.self, from: data)
    }

    public func encoded() -> Data {
        (try? Self.encoder.encode(self)) ?? Data("null".utf8)
    }

    /// The same value with `key` set in its object (no change to a non-object).
    public func setting(_ key: String, _ value: JSONValue?) -> JSONValue {
        guard case .object(var object) = self else { return self }
        object[key] = value
        return .object(object)
    }
}
