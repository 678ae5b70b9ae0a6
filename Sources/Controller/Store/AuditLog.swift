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
        case mcpRequest = "mcp.request"
        case mcpToolPinned = "mcp.tool.pinned"
        case mcpToolChanged = "mcp.tool.changed"
        case mcpToolApproved = "mcp.tool.approved"
        case mcpUpstream = "mcp.upstream"
        case llmRequest = "llm.request"

        /// The events a gateway may report; the rest only the controller writes.
        static let reportedByGateways: Set<EventType> = [.mcpRequest, .mcpUpstream, .llmRequest]
    }

    func record(_ type: EventType, identity: String? = nil, service: String? = nil, circuit: UInt64? = nil, detail: String = "") {
        let at = Date()
        store.writeInBackground("audit \(type.rawValue)") { db in
            let previous = try String.fetchOne(db, sql: "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1") ?? ""
            let hash = Self.hash(previous: previous, type: type.rawValue, at: at, identity: identity, service: service,
                                 circuit: circuit, detail: detail)
            var row = AuditRow(seq: nil, at: at, type: type.rawValue, identity: identity, service: service,
                               circuit: circuit.map { Int64(bitPattern: $0) }, detail: detail, prevHash: previous, hash: hash)
            try row.insert(db)
        }
    }

    /// SHA-256 over the previous row's hash and this row's content; time at millisecond precision,
    /// which is what SQLite keeps.
    static func hash(previous: String, type: String, at: Date, identity: String?, service: String?, circuit: UInt64?, detail: String) -> String {
        let milliseconds = Int64((at.timeIntervalSince1970 * 1000).rounded())
        let canonical = [previous, type, String(milliseconds), identity ?? "", service ?? "", circuit.map(String.init) ?? "", detail]
            .joined(separator: "\u{1F}")
        return SHA256.hash(data: Data(canonical.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// What the trail holds, oldest first: the newest `limit` events that match every filter given.
    func events(limit: Int, type: String? = nil, identity: String? = nil, service: String? = nil, circuit: UInt64? = nil,
                since: Date? = nil, until: Date? = nil) throws -> [AuditEvent] {
        store.waitForBackgroundWrites()
        return try store.pool.read { db in
            var request = AuditRow.order(Column("seq").desc).limit(limit)
            if let type { request = request.filter(Column("type") == type) }
            if let identity { request = request.filter(Column("identity") == identity) }
            if let service { request = request.filter(Column("service") == service) }
            if let circuit { request = request.filter(Column("circuit") == Int64(bitPattern: circuit)) }
            if let since { request = request.filter(Column("at") >= since) }
            if let until { request = request.filter(Column("at") <= until) }
            return try request.fetchAll(db).reversed().map {
                AuditEvent(seq: $0.seq ?? 0, at: $0.at, type: $0.type, identity: $0.identity, service: $0.service,
                           circuit: $0.circuit.map { UInt64(bitPattern: $0) }, detail: $0.detail, hash: $0.hash)
            }
        }
    }

    /// Whether every row's hash covers its content and the previous row's hash.
    func verifyChain() throws -> (rows: Int, brokenAt: Int64?) {
        store.waitForBackgroundWrites()
        return try store.pool.read { db in
            var previous = ""
            var count = 0
            for row in try AuditRow.order(Column("seq")).fetchAll(db) {
                count += 1
                let hash = Self.hash(previous: previous, type: row.type, at: row.at, identity: row.identity, service: row.service,
                                     circuit: row.circuit.map { UInt64(bitPattern: $0) }, detail: row.detail)
                guard row.prevHash == previous, row.hash == hash else { return (count, row.seq) }
                previous = row.hash
            }
            return (count, nil)
        }
    }
}
