import Foundation
import Shared

struct SessionRow: Codable, StoreRecord {
    static let table = "session"
    static let primaryKey = ["sid"]
    var sid: String
    var identity: String
    var service: String
    var type: SessionType
    var routers: [String]
    var iat: Date
    var exp: Date
    var revokedAt: Date?

    init(_ claims: SessionClaims) {
        sid = claims.sid; identity = claims.identity; service = claims.service; type = claims.type
        routers = claims.routers; iat = claims.iat; exp = claims.exp; revokedAt = nil
    }

    var claims: SessionClaims {
        SessionClaims(sid: sid, identity: identity, service: service, type: type, routers: routers, iat: iat, exp: exp)
    }
}

/// Every service session the controller signed, remembered in SQLite until it expires, so that a
/// policy change after a restart still finds and revokes what it no longer allows.
struct SessionRecords: Sendable {
    let store: Store

    func issued(_ claims: SessionClaims) {
        store.writeInBackground("session \(claims.sid)") { db in try db.insert(SessionRow(claims)) }
    }

    func revoked(_ sids: [String], at date: Date = Date()) {
        guard !sids.isEmpty else { return }
        store.writeInBackground("revoke \(sids.count) sessions") { db in
            for batch in stride(from: 0, to: sids.count, by: 500).map({ Array(sids[$0..<min($0 + 500, sids.count)]) }) {
                try db.execute("UPDATE session SET revokedAt = ? WHERE sid IN (\(batch.map { _ in "?" }.joined(separator: ", ")))", [date] + batch)
            }
        }
    }

    /// Unexpired sessions, and which of them are revoked; expired rows are dropped.
    func load(now: Date = Date()) throws -> (live: [SessionClaims], revoked: [String: Date]) {
        try store.write { db in
            try db.delete(SessionRow.self, where: "exp <= ?", [now])
            let rows = try db.all(SessionRow.self)
            var revoked: [String: Date] = [:]
            for row in rows where row.revokedAt != nil { revoked[row.sid] = row.exp }
            return (rows.filter { $0.revokedAt == nil }.map(\.claims), revoked)
        }
    }
}
