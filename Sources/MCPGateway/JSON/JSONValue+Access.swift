import Foundation
import Shared

extension JSONValue {
    public static func parse(_ data: Data) throws -> JSONValue {
        try JSONRPC.decoder.decode(JSONValue.self, from: data)
    }

    public func encoded() -> Data {
        (try? JSONRPC.encoder.encode(self)) ?? Data("null".utf8)
    }

    /// The same value with `key` set in its object (no change to a non-object).
    func setting(_ key: String, _ value: JSONValue?) -> JSONValue {
        guard case .object(var object) = self else { return self }
        object[key] = value
        return .object(object)
    }
}
