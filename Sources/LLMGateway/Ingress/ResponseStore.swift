import Foundation
import GRDB
import Shared

/// Responses kept for `previous_response_id` and `GET`/`DELETE /v1/responses/{id}`, in the hosting
/// gateway's own SQLite file (beside its socket, never at the controller). Each is kept for the
/// party that made it — the agent identity and the person it acted for — and only that party
/// can read, continue or delete it: any other gets the answer of an id that does not exist.
/// Kept `retention` (30 days), then removed.
final class ResponseStore: Sendable {
    static let retention: TimeInterval = 30 * 86_400
    private let pool: DatabaseQueue

    struct Stored: Sendable {
        let response: JSONValue
        /// The whole conversation so far: earlier turns, this request's input and its output.
        let items: [JSONValue]
    }

    /// `path` nil: in memory (a gateway run without a state directory, as in unit tests).
    init(path: String?) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        pool = try path.map { try DatabaseQueue(path: $0, configuration: configuration) } ?? DatabaseQueue(configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "response") { t in
                t.primaryKey("id", .text)
                t.column("party", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("response", .text).notNull()
                t.column("items", .text).notNull()
            }
            try db.create(index: "response_party", on: "response", columns: ["party"])
        }
        try migrator.migrate(pool)
        try pool.write { try $0.execute(sql: "DELETE FROM response WHERE createdAt < ?", arguments: [Date().addingTimeInterval(-Self.retention)]) }
    }

    // Async: GRDB runs each on its own queue, so a gateway's event loop never waits for SQLite.
    func save(id: String, party: String, response: JSONValue, items: [JSONValue]) async throws {
        try await pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO response (id, party, createdAt, response, items) VALUES (?, ?, ?, ?, ?)",
                           arguments: [id, party, Date(), String(decoding: response.encoded(), as: UTF8.self),
                                       String(decoding: JSONValue.array(items).encoded(), as: UTF8.self)])
        }
    }

    func load(id: String, party: String) async throws -> Stored? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT response, items FROM response WHERE id = ? AND party = ?", arguments: [id, party]) else { return nil }
            let response = try JSONValue.parse(Data((row["response"] as String).utf8))
            let items = try JSONValue.parse(Data((row["items"] as String).utf8)).arrayValue ?? []
            return Stored(response: response, items: items)
        }
    }

    /// Whether it existed (for this party) and is gone now.
    func delete(id: String, party: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM response WHERE id = ? AND party = ?", arguments: [id, party])
            return db.changesCount > 0
        }
    }
}
