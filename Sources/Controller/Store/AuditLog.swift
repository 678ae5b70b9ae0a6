import Crypto
import Foundation
import GRDB
import Shared

/// The append-only, hash-chained audit trail: each row's hash covers the previous row's hash and
/// its own content, so a removed or altered row breaks the chain.
///
/// Rows are appended in the store's background queue, off the control loop: recording an event
/// never waits for SQLite. Reads first wait for the writes queued before them.
struct AuditLog: Sendable {
    let store: Store

    enum EventType: String {
        case enrollment = "enrollment"
        case sessionIssued = "session.issued"
        case sessionRevoked = "session.revoked"
        case circuitOpened = "circuit.opened"
        case circuitClosed = "circuit.closed"
        case circuitRerouted = "circuit.rerouted"
        case policyChanged = "policy.changed"
    }

    func record(_ type: EventType, identity: String? = nil, service: String? = nil, circuit: UInt64? = nil, detail: String = "") {
        let at = Date()
        store.writeInBackground("audit \(type.rawValue)") { db in
                let previous = try String.fetchOne(db, sql: "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1") ?? ""
                let canonical = [previous, type.rawValue, "\(at.timeIntervalSince1970)", identity ?? "", service ?? "",
                                 circuit.map(String.init) ?? "", detail].joined(separator: "\u{1F}")
                let hash = SHA256.hash(data: Data(canonical.utf8)).map { String(format: "%02x", $0) }.joined()
                var row = AuditRow(seq: nil, at: at, type: type.rawValue, identity: identity, service: service,
                                   circuit: circuit.map { Int64(bitPattern: $0) }, detail: detail, prevHash: previous, hash: hash)
                try row.insert(db)
        }
    }

    func events(limit: Int, type: String?) throws -> [AuditEvent] {
        store.waitForBackgroundWrites()
        return try store.pool.read { db in
            var request = AuditRow.order(Column("seq").desc).limit(limit)
            if let type { request = request.filter(Column("type") == type) }
            return try request.fetchAll(db).reversed().map {
                AuditEvent(seq: $0.seq ?? 0, at: $0.at, type: $0.type, identity: $0.identity, service: $0.service,
                           circuit: $0.circuit.map { UInt64(bitPattern: $0) }, detail: $0.detail, hash: $0.hash)
            }
        }
    }
}
