import Foundation

/// One row of a result, by column name. PostgreSQL folds unquoted names to lower case and
/// SQLite compares them without case, so names are matched in lower case.
struct SQLRow: Sendable {
    let names: [String]
    let values: [SQLValue]

    init(names: [String], values: [SQLValue]) {
        self.init(lowercasedNames: names.map { $0.lowercased() }, values: values)
    }

    /// For a result's rows, which share their names.
    init(lowercasedNames: [String], values: [SQLValue]) {
        self.names = lowercasedNames
        self.values = values
    }

    func value(_ column: String) -> SQLValue {
        let name = column.lowercased()
        guard let index = names.firstIndex(of: name) else { return .null }
        return values[index]
    }

    func string(_ column: String) throws -> String { try value(column).string(column) }
    func int64(_ column: String) throws -> Int64 { try value(column).int64(column) }
    func double(_ column: String) throws -> Double { try value(column).double(column) }
    func bool(_ column: String) throws -> Bool { try value(column).bool(column) }
    func date(_ column: String) throws -> Date { try value(column).date(column) }
    func optionalString(_ column: String) throws -> String? { value(column).isNull ? nil : try string(column) }
}
