/// The controller's tables in PostgreSQL: the same tables and columns as SQLiteSchema's
/// migrations leave, in PostgreSQL's types. Versions are applied once, in order, under an
/// advisory lock, so that controllers starting together do not race each other.
enum PostgresSchema {
    static let versions: [(name: String, sql: String)] = [
        ("v9", """
        CREATE TABLE identity (name TEXT PRIMARY KEY, roles TEXT NOT NULL, enrolled BOOLEAN NOT NULL, createdAt TIMESTAMPTZ NOT NULL);
        CREATE TABLE router (name TEXT PRIMARY KEY, roles TEXT NOT NULL, enrolled BOOLEAN NOT NULL, createdAt TIMESTAMPTZ NOT NULL);
        CREATE TABLE service (name TEXT PRIMARY KEY, roles TEXT NOT NULL, configs TEXT NOT NULL);
        CREATE TABLE config (name TEXT PRIMARY KEY, type TEXT NOT NULL, data TEXT NOT NULL);
        CREATE TABLE servicePolicy (name TEXT PRIMARY KEY, type TEXT NOT NULL, identityRoles TEXT NOT NULL, serviceRoles TEXT NOT NULL);
        CREATE TABLE edgeRouterPolicy (name TEXT PRIMARY KEY, identityRoles TEXT NOT NULL, routerRoles TEXT NOT NULL);
        CREATE TABLE serviceEdgeRouterPolicy (name TEXT PRIMARY KEY, serviceRoles TEXT NOT NULL, routerRoles TEXT NOT NULL);
        CREATE TABLE enrollment (jti TEXT PRIMARY KEY, subject TEXT NOT NULL, kind TEXT NOT NULL, expiresAt TIMESTAMPTZ NOT NULL, usedAt TIMESTAMPTZ);
        CREATE TABLE admin (username TEXT PRIMARY KEY, salt TEXT NOT NULL, passwordHash TEXT NOT NULL);
        CREATE TABLE audit (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at TIMESTAMPTZ NOT NULL, type TEXT NOT NULL,
            identity TEXT, service TEXT, circuit BIGINT, detail TEXT NOT NULL, prevHash TEXT NOT NULL, hash TEXT NOT NULL, "user" TEXT);
        CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit is append-only'; END $$;
        CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
        CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
        CREATE TABLE session (
            sid TEXT PRIMARY KEY, identity TEXT NOT NULL, service TEXT NOT NULL, type TEXT NOT NULL, routers TEXT NOT NULL,
            iat TIMESTAMPTZ NOT NULL, exp TIMESTAMPTZ NOT NULL, revokedAt TIMESTAMPTZ);
        CREATE INDEX session_exp ON session (exp);
        CREATE TABLE adminSession (tokenHash TEXT PRIMARY KEY, expiresAt TIMESTAMPTZ NOT NULL);
        CREATE TABLE link (name TEXT PRIMARY KEY, a TEXT NOT NULL, b TEXT NOT NULL, cost DOUBLE PRECISION NOT NULL);
        CREATE TABLE toolPin (
            service TEXT NOT NULL, tool TEXT NOT NULL, approvedHash TEXT NOT NULL, pendingHash TEXT, updatedAt TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (service, tool));
        CREATE TABLE certificate (
            fingerprint TEXT PRIMARY KEY, entity TEXT NOT NULL, kind TEXT NOT NULL, serial TEXT NOT NULL, issuedAt TIMESTAMPTZ NOT NULL,
            expiresAt TIMESTAMPTZ NOT NULL, revokedAt TIMESTAMPTZ, reason TEXT);
        CREATE INDEX certificate_entity ON certificate (kind, entity);
        CREATE TABLE auditHead (id BIGINT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL, mac TEXT NOT NULL);
        CREATE TABLE externalJWTSigner (
            name TEXT PRIMARY KEY, issuer TEXT NOT NULL, audience TEXT NOT NULL, jwksURL TEXT, keys TEXT, userClaim TEXT, attributeClaims TEXT);
        CREATE TABLE delegationPolicy (name TEXT PRIMARY KEY, agentRoles TEXT NOT NULL, userRoles TEXT NOT NULL);
        CREATE TABLE assertionKey (kid TEXT PRIMARY KEY, identity TEXT NOT NULL, jwk TEXT NOT NULL, publishedAt TIMESTAMPTZ NOT NULL);
        CREATE TABLE llmUsage (
            day TEXT NOT NULL, identity TEXT NOT NULL, "user" TEXT NOT NULL, project TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
            requests BIGINT NOT NULL, inputTokens BIGINT NOT NULL, outputTokens BIGINT NOT NULL, costUSD DOUBLE PRECISION NOT NULL,
            cachedInputTokens BIGINT NOT NULL DEFAULT 0, cacheWriteTokens BIGINT NOT NULL DEFAULT 0, reasoningTokens BIGINT NOT NULL DEFAULT 0,
            estimatedRequests BIGINT NOT NULL DEFAULT 0, unpricedRequests BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (day, identity, "user", project, model, provider));
        """),
        ("v10", """
        CREATE TABLE controller (name TEXT PRIMARY KEY, controlAddress TEXT NOT NULL, apiAddress TEXT NOT NULL, startedAt TIMESTAMPTZ NOT NULL);
        """),
        ("v11", """
        CREATE TABLE gatewayCatalog (service TEXT PRIMARY KEY, reporter TEXT NOT NULL, updatedAt TIMESTAMPTZ NOT NULL, entries TEXT NOT NULL);
        ALTER TABLE toolPin ADD COLUMN approvedDefinition TEXT;
        ALTER TABLE toolPin ADD COLUMN pendingDefinition TEXT;
        """),
    ]

    static func migrate(_ db: any StoreConnection) throws {
        try db.execute("SELECT pg_advisory_xact_lock(7400)")
        try db.execute("CREATE TABLE IF NOT EXISTS portless_schema (version TEXT PRIMARY KEY, appliedAt TIMESTAMPTZ NOT NULL DEFAULT now())")
        let applied = Set(try db.rows("SELECT version FROM portless_schema", []).map { try $0.string("version") })
        for version in versions where !applied.contains(version.name) {
            for statement in statements(version.sql) { try db.execute(statement) }
            try db.execute("INSERT INTO portless_schema (version) VALUES (?)", [version.name])
        }
    }

    /// One statement at a time (the extended protocol runs one per query); `$$` bodies kept whole.
    static func statements(_ sql: String) -> [String] {
        var result: [String] = [], current = "", inBody = false
        var rest = Substring(sql)
        while let character = rest.first {
            if rest.hasPrefix("$$") { inBody.toggle(); current += "$$"; rest = rest.dropFirst(2); continue }
            rest = rest.dropFirst()
            if character == ";" && !inBody {
                let statement = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !statement.isEmpty { result.append(statement) }
                current = ""
            } else {
                current.append(character)
            }
        }
        let last = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !last.isEmpty { result.append(last) }
        return result
    }
}

import Foundation
