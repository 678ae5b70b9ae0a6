import GRDB

/// The controller's tables in SQLite, as GRDB migrations: a database made by any earlier
/// release is brought up to date when the controller opens it. PostgresSchema holds the same
/// tables for PostgreSQL; a change to one is made to both.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
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
        migrator.registerMigration("v2-sessions") { db in
            // Signed service sessions, so revocation still finds them after a restart.
            try db.create(table: "session") { t in
                t.primaryKey("sid", .text)
                t.column("identity", .text).notNull()
                t.column("service", .text).notNull()
                t.column("type", .text).notNull()
                t.column("routers", .text).notNull()
                t.column("iat", .datetime).notNull()
                t.column("exp", .datetime).notNull()
                t.column("revokedAt", .datetime)
            }
            try db.create(index: "session_exp", on: "session", columns: ["exp"])
            // Admin API logins survive a controller restart; only a hash of each token is kept.
            try db.create(table: "adminSession") { t in
                t.primaryKey("tokenHash", .text)
                t.column("expiresAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v3-links") { db in
            // Operator-chosen links; when there are none, routers form a full mesh.
            try db.create(table: "link") { t in
                t.primaryKey("name", .text)
                t.column("a", .text).notNull()
                t.column("b", .text).notNull()
                t.column("cost", .double).notNull()
            }
        }
        migrator.registerMigration("v4-tool-pins") { db in
            // MCP tool definitions as first approved, and changes that wait for an operator.
            try db.create(table: "toolPin") { t in
                t.column("service", .text).notNull()
                t.column("tool", .text).notNull()
                t.column("approvedHash", .text).notNull()
                t.column("pendingHash", .text)
                t.column("updatedAt", .datetime).notNull()
                t.primaryKey(["service", "tool"])
            }
        }
        migrator.registerMigration("v5-llm-usage") { db in
            // LLM usage per UTC day, identity, project and model: what budgets and reports read.
            try db.create(table: "llmUsage") { t in
                t.column("day", .text).notNull()
                t.column("identity", .text).notNull()
                t.column("project", .text).notNull()
                t.column("model", .text).notNull()
                t.column("provider", .text).notNull()
                t.column("requests", .integer).notNull()
                t.column("inputTokens", .integer).notNull()
                t.column("outputTokens", .integer).notNull()
                t.column("costUSD", .double).notNull()
                t.primaryKey(["day", "identity", "project", "model", "provider"])
            }
        }
        migrator.registerMigration("v6-certificates") { db in
            // Every certificate the CA issued: re-enrollment, revocation and deletion revoke them,
            // and the revoked ones (until they expire) are refused by the controller and every router.
            try db.create(table: "certificate") { t in
                t.primaryKey("fingerprint", .text)
                t.column("entity", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("serial", .text).notNull()
                t.column("issuedAt", .datetime).notNull()
                t.column("expiresAt", .datetime).notNull()
                t.column("revokedAt", .datetime)
                t.column("reason", .text)
            }
            try db.create(index: "certificate_entity", on: "certificate", columns: ["kind", "entity"])
        }
        migrator.registerMigration("v7-audit-head") { db in
            // The audit trail's newest row, signed: a trail cut short no longer matches it.
            try db.create(table: "auditHead") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("seq", .integer).notNull()
                t.column("hash", .text).notNull()
                t.column("mac", .text).notNull()
            }
        }
        migrator.registerMigration("v8-people") { db in
            // The identity providers whose tokens name people, and which agents may act for whom.
            try db.create(table: "externalJWTSigner") { t in
                t.primaryKey("name", .text)
                t.column("issuer", .text).notNull()
                t.column("audience", .text).notNull()
                t.column("jwksURL", .text)
                t.column("keys", .text)
                t.column("userClaim", .text)
                t.column("attributeClaims", .text)
            }
            try db.create(table: "delegationPolicy") { t in
                t.primaryKey("name", .text)
                t.column("agentRoles", .text).notNull()
                t.column("userRoles", .text).notNull()
            }
            // The keys gateways sign their statements to upstreams with, published as JWKS.
            try db.create(table: "assertionKey") { t in
                t.primaryKey("kid", .text)
                t.column("identity", .text).notNull()
                t.column("jwk", .text).notNull()
                t.column("publishedAt", .datetime).notNull()
            }
            // Audit rows and usage name the person an agent acted for.
            try db.alter(table: "audit") { t in t.add(column: "user", .text) }
            try db.create(table: "llmUsageByPerson") { t in
                t.column("day", .text).notNull()
                t.column("identity", .text).notNull()
                t.column("user", .text).notNull()
                t.column("project", .text).notNull()
                t.column("model", .text).notNull()
                t.column("provider", .text).notNull()
                t.column("requests", .integer).notNull()
                t.column("inputTokens", .integer).notNull()
                t.column("outputTokens", .integer).notNull()
                t.column("costUSD", .double).notNull()
                t.primaryKey(["day", "identity", "user", "project", "model", "provider"])
            }
            try db.execute(sql: """
                INSERT INTO llmUsageByPerson (day, identity, user, project, model, provider, requests, inputTokens, outputTokens, costUSD)
                SELECT day, identity, '', project, model, provider, requests, inputTokens, outputTokens, costUSD FROM llmUsage
                """)
            try db.drop(table: "llmUsage")
            try db.rename(table: "llmUsageByPerson", to: "llmUsage")
        }
        migrator.registerMigration("v9-usage-detail") { db in
            // Tokens with their own prices, estimated counts and unpriced models, per usage row.
            try db.alter(table: "llmUsage") { t in
                t.add(column: "cachedInputTokens", .integer).notNull().defaults(to: 0)
                t.add(column: "cacheWriteTokens", .integer).notNull().defaults(to: 0)
                t.add(column: "reasoningTokens", .integer).notNull().defaults(to: 0)
                t.add(column: "estimatedRequests", .integer).notNull().defaults(to: 0)
                t.add(column: "unpricedRequests", .integer).notNull().defaults(to: 0)
            }
        }
        migrator.registerMigration("v10-controllers") { db in
            // The controllers of the network: routers and tunnelers are told every one of them.
            try db.create(table: "controller") { t in
                t.primaryKey("name", .text)
                t.column("controlAddress", .text).notNull()
                t.column("apiAddress", .text).notNull()
                t.column("startedAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v11-catalogs") { db in
            // What each MCP gateway offers, and the definitions behind tool pins (for approvals).
            try db.create(table: "gatewayCatalog") { t in
                t.primaryKey("service", .text)
                t.column("reporter", .text).notNull()
                t.column("updatedAt", .datetime).notNull()
                t.column("entries", .text).notNull()
            }
            try db.alter(table: "toolPin") { t in
                t.add(column: "approvedDefinition", .text)
                t.add(column: "pendingDefinition", .text)
            }
        }
        return migrator
    }
}
