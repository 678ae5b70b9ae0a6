import Foundation
import GRDB

/// The default store: one SQLite file (WAL), through GRDB. Writes are serialized by GRDB;
/// reads run concurrently with them.
final class SQLiteBackend: StoreBackend {
    let pool: DatabasePool
    var dialect: SQLDialect { .sqlite }

    init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        try SQLiteSchema.migrator.migrate(pool)
    }

    func read<T>(_ body: (any StoreConnection) throws -> T) throws -> T {
        try pool.read { db in try body(GRDBConnection(db: db, statements: nil)) }
    }

    /// The writer's compiled statements; used only inside `pool.write`, which GRDB serializes.
    private let writerStatements = StatementCache()

    func write<T>(_ body: (any StoreConnection) throws -> T) throws -> T {
        do {
            return try pool.write { db in try body(GRDBConnection(db: db, statements: writerStatements)) }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw StoreConflict(message: error.message ?? "constraint violated")
        }
    }

    func close() { try? pool.close() }
}

private struct GRDBConnection: StoreConnection {
    let db: Database
    var dialect: SQLDialect { .sqlite }

    /// Statements the writer compiled before (writes only: audit rows and usage come hundreds a
    /// second, and compiling is most of what a small INSERT costs, GRDB's authorizer running for
    /// every column of every statement it compiles).
    let statements: StatementCache?

    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        if let statement = try statements?.statement(sql, in: db) {
            try statement.execute(arguments: Self.arguments(arguments))
        } else {
            try db.execute(sql: sql, arguments: Self.arguments(arguments))
        }
        return db.changesCount
    }

    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow] {
        let cursor = if let statement = try statements?.statement(sql, in: db) {
            try Row.fetchCursor(statement, arguments: Self.arguments(arguments))
        } else {
            try Row.fetchCursor(db, sql: sql, arguments: Self.arguments(arguments))
        }
        var result: [SQLRow] = []
        var names: [String]?
        while let row = try cursor.next() {
            if names == nil { names = row.columnNames.map { $0.lowercased() } }
            result.append(SQLRow(lowercasedNames: names ?? [], values: row.databaseValues.map(Self.value)))
        }
        return result
    }

    private static func arguments(_ arguments: [any SQLArgument]) -> StatementArguments {
        StatementArguments(arguments.map { argument -> DatabaseValue in
            switch argument.sqlValue {
            case .null: return .null
            case .integer(let value): return value.databaseValue
            case .real(let value): return value.databaseValue
            case .text(let value): return value.databaseValue
            case .boolean(let value): return value.databaseValue
            case .date(let value): return SQLiteDate.format(value).databaseValue
            }
        })
    }

    private static func value(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: return .null
        case .int64(let value): return .integer(value)
        case .double(let value): return .real(value)
        case .string(let value): return .text(value)
        case .blob(let data): return .text(String(decoding: data, as: UTF8.self))
        }
    }
}

/// Compiled statements by SQL text, for one connection. Bounded: SQL that differs each time (a
/// list of placeholders, a literal limit) must not grow it without end; when full it starts over.
final class StatementCache: @unchecked Sendable {  // safe: used only on the connection's serialized queue
    static let limit = 256
    private var statements: [String: Statement] = [:]

    /// The statement for `sql`, or nil when `sql` holds more than one statement (run it uncached).
    func statement(_ sql: String, in db: Database) throws -> Statement? {
        if let known = statements[sql] { return known }
        let compiled: Statement
        do { compiled = try db.makeStatement(sql: sql) } catch let error as DatabaseError where error.resultCode == .SQLITE_MISUSE {
            return nil
        }
        if statements.count >= Self.limit { statements.removeAll() }
        statements[sql] = compiled
        return compiled
    }
}
