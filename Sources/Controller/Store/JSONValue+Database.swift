import Foundation
import GRDB
import Shared

/// Config payloads are stored as JSON text. Without this GRDB would hand `JSONValue`'s decoder
/// the text itself, which SQLite's conversions then read as a scalar (a mapping became `false`).
extension JSONValue: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue {
        let data = (try? JSONEncoder().encode(self)) ?? Data("null".utf8)
        return String(decoding: data, as: UTF8.self).databaseValue
    }

    public static func fromDatabaseValue(_ dbValue: DatabaseValue) -> JSONValue? {
        guard let text = String.fromDatabaseValue(dbValue) else { return nil }
        return try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }
}
