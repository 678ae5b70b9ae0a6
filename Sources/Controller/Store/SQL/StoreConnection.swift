/// The SQL the two backends do not share; everything else is written once, in the subset
/// SQLite and PostgreSQL both accept (`?` placeholders are rewritten for PostgreSQL).
enum SQLDialect: Sendable {
    case sqlite
    case postgres
}

/// A connection inside a read or a write transaction of the controller's store.
protocol StoreConnection {
    var dialect: SQLDialect { get }
    /// Runs a statement; returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int
    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow]
}

extension StoreConnection {
    @discardableResult
    func execute(_ sql: String) throws -> Int { try execute(sql, []) }

    func row(_ sql: String, _ arguments: [any SQLArgument] = []) throws -> SQLRow? { try rows(sql, arguments).first }

    /// Serializes appends to the audit trail across every controller sharing the database, until
    /// the transaction ends. SQLite has one writer at a time already.
    func lockAuditTrail() throws {
        if dialect == .postgres { try execute("SELECT pg_advisory_xact_lock(7401)") }
    }
}

/// Where the controller keeps its state: one SQLite file, or a PostgreSQL database shared by
/// several controllers.
protocol StoreBackend: Sendable {
    var dialect: SQLDialect { get }
    func read<T>(_ body: (any StoreConnection) throws -> T) throws -> T
    /// Runs `body` in a transaction: all of it is kept, or none if it throws.
    func write<T>(_ body: (any StoreConnection) throws -> T) throws -> T
    func close()
}
