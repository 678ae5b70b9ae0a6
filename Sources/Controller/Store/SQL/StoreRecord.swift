import Foundation

/// A row type of the controller's store: a table, its primary key, and its columns as the
/// type's `Codable` properties. Lists and JSON payloads are kept as JSON text, string enums
/// as their raw value, as GRDB kept them before PostgreSQL was a choice.
protocol StoreRecord: Codable {
    static var table: String { get }
    static var primaryKey: [String] { get }
}

extension StoreRecord {
    static var primaryKey: [String] { ["name"] }
}

/// The same table row cannot be inserted twice: a primary key or unique constraint refused it.
struct StoreConflict: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension StoreConnection {
    func all<R: StoreRecord>(_ type: R.Type, where condition: String? = nil, _ arguments: [any SQLArgument] = [],
                             orderBy: String? = nil, limit: Int? = nil) throws -> [R] {
        var sql = "SELECT * FROM \(quoted(R.table))"
        if let condition { sql += " WHERE \(condition)" }
        if let orderBy { sql += " ORDER BY \(orderBy)" }
        if let limit { sql += " LIMIT \(max(0, limit))" }
        return try rows(sql, arguments).map { try R(from: RecordDecoder(row: $0)) }
    }

    func one<R: StoreRecord>(_ type: R.Type, key: any SQLArgument) throws -> R? {
        try all(R.self, where: "\(quoted(R.primaryKey[0])) = ?", [key], limit: 1).first
    }

    func one<R: StoreRecord>(_ type: R.Type, where condition: String, _ arguments: [any SQLArgument]) throws -> R? {
        try all(R.self, where: condition, arguments, limit: 1).first
    }

    func insert<R: StoreRecord>(_ record: R) throws {
        let columns = try RecordEncoder.columns(of: record)
        try execute("INSERT INTO \(quoted(R.table)) (\(columns.map { quoted($0.name) }.joined(separator: ", "))) VALUES (\(placeholders(columns.count)))",
                    columns.map(\.value))
    }

    /// Inserts many records in multi-row statements (one round trip per batch, not per row).
    func insert<R: StoreRecord>(contentsOf records: [R], batch: Int = 500) throws {
        var start = 0
        while start < records.count {
            let slice = records[start..<min(start + batch, records.count)]
            let rows = try slice.map { try RecordEncoder.columns(of: $0) }
            guard let first = rows.first else { break }
            let names = first.map { quoted($0.name) }.joined(separator: ", ")
            let tuple = "(" + placeholders(first.count) + ")"
            try execute("INSERT INTO \(quoted(R.table)) (\(names)) VALUES " + Array(repeating: tuple, count: rows.count).joined(separator: ", "),
                        rows.flatMap { $0.map(\.value) })
            start += batch
        }
    }

    /// Inserts the record, or replaces every column of the row with its primary key.
    func save<R: StoreRecord>(_ record: R) throws {
        let columns = try RecordEncoder.columns(of: record)
        let keys = Set(R.primaryKey.map { $0.lowercased() })
        let updates = columns.filter { !keys.contains($0.name.lowercased()) }.map { "\(quoted($0.name)) = excluded.\(quoted($0.name))" }
        try execute("""
            INSERT INTO \(quoted(R.table)) (\(columns.map { quoted($0.name) }.joined(separator: ", "))) VALUES (\(placeholders(columns.count)))
            ON CONFLICT (\(R.primaryKey.map(quoted).joined(separator: ", "))) DO \(updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.joined(separator: ", "))
            """, columns.map(\.value))
    }

    /// Updates the row with the record's primary key; returns whether there was one.
    @discardableResult
    func update<R: StoreRecord>(_ record: R) throws -> Bool {
        let columns = try RecordEncoder.columns(of: record)
        let keys = Set(R.primaryKey.map { $0.lowercased() })
        let set = columns.filter { !keys.contains($0.name.lowercased()) }
        let key = try R.primaryKey.map { name in
            guard let column = columns.first(where: { $0.name.lowercased() == name.lowercased() }) else {
                throw SQLDecodingError(column: name, expected: "a primary key value", found: .null)
            }
            return column
        }
        return try execute("""
            UPDATE \(quoted(R.table)) SET \(set.map { "\(quoted($0.name)) = ?" }.joined(separator: ", "))
            WHERE \(key.map { "\(quoted($0.name)) = ?" }.joined(separator: " AND "))
            """, set.map(\.value) + key.map(\.value)) > 0
    }

    @discardableResult
    func delete<R: StoreRecord>(_ type: R.Type, key: any SQLArgument) throws -> Bool {
        try delete(R.self, where: "\(quoted(R.primaryKey[0])) = ?", [key]) > 0
    }

    @discardableResult
    func delete<R: StoreRecord>(_ type: R.Type, where condition: String, _ arguments: [any SQLArgument]) throws -> Int {
        try execute("DELETE FROM \(quoted(R.table)) WHERE \(condition)", arguments)
    }

    /// A quoted identifier both backends resolve to the same table or column: PostgreSQL
    /// created them unquoted (folded to lower case); SQLite ignores case.
    func quoted(_ identifier: String) -> String { "\"" + identifier.lowercased() + "\"" }

    private func placeholders(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ", ") }
}
