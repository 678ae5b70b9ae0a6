import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// The store on a PostgreSQL database, which several controllers of one network share. Callers
/// block on a small pool of connections (the store's interface is synchronous, as SQLite's
/// is); the connections run on an event loop of their own, so no caller waits on a thread it
/// occupies. A connection that breaks is replaced on next use, and a statement that gets no
/// answer in time fails instead of blocking the controller.
final class PostgresBackend: StoreBackend, @unchecked Sendable {
    // @unchecked: the pool's state is guarded by `condition`; the rest is immutable.
    let location: PostgresLocation
    var dialect: SQLDialect { .postgres }
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let logger: Logger
    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var opened = 0
    private var nextID = 0
    private let maxConnections: Int
    static let statementTimeout: TimeAmount = .seconds(30)

    init(location: PostgresLocation, maxConnections: Int = 4, logger: Logger = ControllerLog.logger) throws {
        self.location = location
        self.maxConnections = maxConnections
        self.logger = logger
        do {
            try write { try PostgresSchema.migrate($0) }
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    func read<T>(_ body: (any StoreConnection) throws -> T) throws -> T {
        try withConnection { connection in try body(PostgresStoreConnection(connection: connection, logger: logger)) }
    }

    func write<T>(_ body: (any StoreConnection) throws -> T) throws -> T {
        try withConnection { connection in
            let db = PostgresStoreConnection(connection: connection, logger: logger)
            try db.execute("BEGIN")
            do {
                let value = try body(db)
                try db.execute("COMMIT")
                return value
            } catch {
                if !connection.isClosed { _ = try? db.execute("ROLLBACK") }
                throw error
            }
        }
    }

    func close() {
        condition.lock()
        let connections = idle
        idle = []
        condition.unlock()
        for connection in connections { try? connection.close().wait() }
        try? group.syncShutdownGracefully()
    }

    /// A connection of its own for `LISTEN`, outside the pool.
    func connectForNotifications() throws -> PostgresConnection { try connect() }

    private func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try acquire()
        defer { release(connection) }
        do {
            return try body(connection)
        } catch let error as PSQLError {
            throw PostgresStoreError(error, location: location)
        }
    }

    private func acquire() throws -> PostgresConnection {
        condition.lock()
        while true {
            while let connection = idle.popLast() {
                if !connection.isClosed { condition.unlock(); return connection }
                opened -= 1
            }
            if opened < maxConnections { break }
            condition.wait()
        }
        opened += 1
        condition.unlock()
        do {
            return try connect()
        } catch {
            condition.lock()
            opened -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    private func release(_ connection: PostgresConnection) {
        condition.lock()
        if connection.isClosed { opened -= 1 } else { idle.append(connection) }
        condition.signal()
        condition.unlock()
    }

    private func connect() throws -> PostgresConnection {
        let id = condition.withLock { () -> Int in nextID += 1; return nextID }
        do {
            return try PostgresConnection.connect(on: group.next(), configuration: try location.configuration(), id: id, logger: logger).wait()
        } catch let error as PSQLError {
            throw PostgresStoreError(error, location: location)
        }
    }
}

/// A failure of PostgreSQL or of the way to it, said plainly (PostgresNIO keeps its errors'
/// descriptions vague so that they never leak a query's data into logs; the server's own
/// message is what an operator needs).
struct PostgresStoreError: Error, CustomStringConvertible {
    let description: String
    /// The server could not be reached or the connection broke (the statement itself was not refused):
    /// worth trying again.
    let isTransient: Bool

    init(_ error: PSQLError, location: PostgresLocation) {
        isTransient = error.serverInfo == nil || ["57P01", "57P02", "57P03", "08000", "08003", "08006"].contains(error.serverInfo?[.sqlState] ?? "")
        if let info = error.serverInfo {
            description = "PostgreSQL at \(location.display): \(info[.message] ?? "error") (SQLSTATE \(info[.sqlState] ?? "?"))"
        } else if let underlying = error.underlying {
            description = "PostgreSQL at \(location.display): \(error.code): \(underlying)"
        } else {
            description = "PostgreSQL at \(location.display): \(error.code)"
        }
    }
}

private struct PostgresStoreConnection: StoreConnection {
    let connection: PostgresConnection
    let logger: Logger
    var dialect: SQLDialect { .postgres }

    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
    }

    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [SQLRow] {
        let result = try run(sql, arguments)
        guard let first = result.rows.first else { return [] }
        let names = first.map { $0.columnName.lowercased() }
        return try result.rows.map { row in SQLRow(lowercasedNames: names, values: try row.map(Self.value)) }
    }

    private func run(_ sql: String, _ arguments: [any SQLArgument]) throws -> PostgresQueryResult {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument.sqlValue {
            case .null: binds.appendNull()
            case .integer(let value): try binds.append(value)
            case .real(let value): try binds.append(value)
            case .text(let value): try binds.append(value)
            case .boolean(let value): try binds.append(value)
            case .date(let value): try binds.append(value)
            }
        }
        let query = PostgresQuery(unsafeSQL: Self.numberedPlaceholders(sql), binds: binds)
        // A server that stops answering must not hold the controller: close the connection,
        // which fails the statement (and the pool replaces the connection).
        let connection = self.connection
        let deadline = connection.eventLoop.scheduleTask(in: PostgresBackend.statementTimeout) { let _: EventLoopFuture<Void> = connection.close() }
        defer { deadline.cancel() }
        do {
            return try connection.query(query, logger: logger).wait()
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw StoreConflict(message: error.serverInfo?[.detail] ?? error.serverInfo?[.message] ?? "already exists")
        }
    }

    private static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .bool: return .boolean(try cell.decode(Bool.self))
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .timestamptz, .timestamp: return .date(try cell.decode(Date.self))
        default: return .text(try cell.decode(String.self))
        }
    }

    /// `?` → `$1`, `$2`, … outside quoted text and identifiers.
    static func numberedPlaceholders(_ sql: String) -> String {
        var result = ""
        result.reserveCapacity(sql.utf8.count + 16)
        var quote: Character?
        var number = 0
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                result.append(character)
            } else if character == "'" || character == "\"" {
                quote = character
                result.append(character)
            } else if character == "?" {
                number += 1
                result += "$\(number)"
            } else {
                result.append(character)
            }
        }
        return result
    }
}
