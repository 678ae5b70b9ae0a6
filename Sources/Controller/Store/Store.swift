import Foundation
import GRDB
import Shared

/// The controller's SQLite database (WAL) with its migrations. Thread-safe: GRDB serializes
/// writes and lets reads run concurrently.
final class Store: Sendable {
    let pool: DatabasePool

    init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "identity") { t in
                t.primaryKey("name", .text)
                t.column("roles", .text).notNull()
                t.column("enrolled", .boolean).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "router") { t in
                t.primaryKey("name", .text)
                t.column("roles", .text).notNull()
                t.column("enrolled", .boolean).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "service") { t in
                t.primaryKey("name", .text)
                t.column("roles", .text).notNull()
                t.column("configs", .text).notNull()
            }
            try db.create(table: "config") { t in
                t.primaryKey("name", .text)
                t.column("type", .text).notNull()
                t.column("data", .text).notNull()
            }
            try db.create(table: "servicePolicy") { t in
                t.primaryKey("name", .text)
                t.column("type", .text).notNull()
                t.column("identityRoles", .text).notNull()
                t.column("serviceRoles", .text).notNull()
            }
            try db.create(table: "edgeRouterPolicy") { t in
                t.primaryKey("name", .text)
                t.column("identityRoles", .text).notNull()
                t.column("routerRoles", .text).notNull()
            }
            try db.create(table: "serviceEdgeRouterPolicy") { t in
                t.primaryKey("name", .text)
                t.column("serviceRoles", .text).notNull()
                t.column("routerRoles", .text).notNull()
            }
            try db.create(table: "enrollment") { t in
                t.primaryKey("jti", .text)
                t.column("subject", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("expiresAt", .datetime).notNull()
                t.column("usedAt", .datetime)
            }
            try db.create(table: "admin") { t in
                t.primaryKey("username", .text)
                t.column("salt", .text).notNull()
                t.column("passwordHash", .text).notNull()
            }
            try db.create(table: "audit") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("at", .datetime).notNull()
                t.column("type", .text).notNull()
                t.column("identity", .text)
                t.column("service", .text)
                t.column("circuit", .integer)
                t.column("detail", .text).notNull()
                t.column("prevHash", .text).notNull()
                t.column("hash", .text).notNull()
            }
            // Append-only: the audit trail refuses updates and deletes at the database level.
            try db.execute(sql: """
                CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
                CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
                """)
        }
        return migrator
    }
}
