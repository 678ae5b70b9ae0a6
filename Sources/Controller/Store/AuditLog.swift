import Crypto
import Foundation
import Shared

/// The append-only, chained audit trail. Each row's hash is an HMAC, under a key the controller
/// keeps outside the database (`audit.key`), over the previous row's hash and its own content;
/// the newest row's sequence and hash are kept in `auditHead` with their own HMAC. Whoever can
/// write the database but lacks the key can neither rewrite a row (its hash and every later one
/// would change, and cannot be recomputed) nor cut the tail (the head would no longer match and
/// cannot be re-signed): `portless audit --verify` finds both.
///
/// Rows are appended in the store's background queue, off the control loop: recording an event
/// never waits for SQLite. Reads first wait for the writes queued before them.
struct AuditLog: Sendable {
    let store: Store
    nonisolated(unsafe) let key: SymmetricKey  // safe: an immutable key value, never mutated
    /// Entries recorded and not yet taken by an append.
    let queue = AuditQueue()
    /// How long an append waits for more entries to join it: a dial records two events within
    /// milliseconds, a busy controller hundreds a second, and each append is a transaction.
    static let gatherFor: TimeInterval = 0.005

    /// A fresh key for a new network's trail.
    static func newKey() -> String { SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() } }

    enum EventType: String {
        case enrollment = "enrollment"
        case certificateRevoked = "certificate.revoked"
        case sessionIssued = "session.issued"
        case sessionRevoked = "session.revoked"
        case circuitOpened = "circuit.opened"
        case circuitClosed = "circuit.closed"
        case circuitRerouted = "circuit.rerouted"
        /// A tunneler refused a circuit: a grant that did not hold, or a peer that was not the granted one.
        case circuitRefused = "circuit.refused"
        case policyChanged = "policy.changed"
        case mcpRequest = "mcp.request"
        case mcpToolPinned = "mcp.tool.pinned"
        case mcpToolChanged = "mcp.tool.changed"
        case mcpToolApproved = "mcp.tool.approved"
        case mcpUpstream = "mcp.upstream"
        case llmRequest = "llm.request"
        /// Usage a gateway reported that the controller would not store (out of range, not a caller).
        case usageRefused = "usage.refused"

        /// The events a gateway may report; the rest only the controller writes.
        static let reportedByGateways: Set<EventType> = [.mcpRequest, .mcpUpstream, .llmRequest]
    }

    /// One event to append.
    struct Entry: Sendable {
        var type: EventType
        var identity: String? = nil
        var user: String? = nil
        var service: String? = nil
        var circuit: UInt64? = nil
        var detail: String = ""
    }

    func record(_ type: EventType, identity: String? = nil, user: String? = nil, service: String? = nil, circuit: UInt64? = nil, detail: String = "") {
        record([Entry(type: type, identity: identity, user: user, service: service, circuit: circuit, detail: detail)])
    }

    /// Appends `entries` in order. Entries recorded within `gatherFor` of the first, or while
    /// earlier ones wait for the store, are appended with them, in one transaction: a burst of
    /// dials or a gateway's report of hundreds of requests costs one lock, one read of the
    /// previous hash and one head update.
    func record(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        for entry in entries { ControllerMetrics.recorded(entry.type.rawValue) }
        // Whole milliseconds: what both backends keep exactly, so the hash verifies after a read.
        let at = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
        guard queue.add(entries.map { ($0, at) }) else { return }  // a queued append takes them
        let batch = Locked<[(Entry, Date)]?>(nil)
        store.writeInBackground("audit", after: Self.gatherFor) { [queue] db in
            // Taken once: an attempt the store retries appends the same entries.
            let entries = batch.withLock { taken in
                if taken == nil { taken = queue.takeAll() }
                return taken ?? []
            }
            guard !entries.isEmpty else { return }
            // Several controllers may append to one trail: each append sees the one before it.
            try db.lockAuditTrail()
            var previous = try db.row("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")?.string("hash") ?? ""
            var last: Int64?
            for (entry, at) in entries {
                let hash = Self.hash(previous: previous, type: entry.type.rawValue, at: at, identity: entry.identity, user: entry.user,
                                     service: entry.service, circuit: entry.circuit, detail: entry.detail, key: key)
                guard let seq = try db.row("""
                    INSERT INTO audit (at, type, identity, "user", service, circuit, detail, prevHash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    RETURNING seq
                    """, [at, entry.type.rawValue, entry.identity, entry.user, entry.service, entry.circuit.map { Int64(bitPattern: $0) },
                          entry.detail, previous, hash])?.int64("seq")
                else { throw StoreConflict(message: "the audit row got no sequence number") }
                previous = hash
                last = seq
            }
            guard let last else { return }
            try db.execute("""
                INSERT INTO auditHead (id, seq, hash, mac) VALUES (1, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac
                """, [last, previous, Self.headMAC(seq: last, hash: previous, key: key)])
        }
    }

    /// HMAC-SHA256 over the previous row's hash and this row's content; time at millisecond
    /// precision, which is what SQLite keeps.
    /// A row that names a person covers it too (rows from before people were recorded hash as they did).
    static func hash(previous: String, type: String, at: Date, identity: String?, user: String? = nil, service: String?, circuit: UInt64?,
                     detail: String, key: SymmetricKey) -> String {
        let milliseconds = Int64((at.timeIntervalSince1970 * 1000).rounded())
        var fields = [previous, type, String(milliseconds), identity ?? "", service ?? "", circuit.map(String.init) ?? "", detail]
        if let user { fields.append("user=" + user) }
        let canonical = fields.joined(separator: "\u{1F}")
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(canonical.utf8), using: key))
    }

    static func headMAC(seq: Int64, hash: String, key: SymmetricKey) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Data("head\u{1F}\(seq)\u{1F}\(hash)".utf8), using: key))
    }

    /// What the trail holds, oldest first: the newest `limit` events that match every filter given.
    /// `user` selects what agents did for that person — their gateway records, and the records of
    /// the circuits that carried them (a circuit opens before any request names a person). `trace`
    /// selects the gateway records of one trace (their `traceId`).
    func events(limit: Int, type: String? = nil, identity: String? = nil, user: String? = nil, service: String? = nil,
                circuit: UInt64? = nil, since: Date? = nil, until: Date? = nil, trace: String? = nil) throws -> [AuditEvent] {
        store.waitForBackgroundWrites()
        var conditions: [String] = [], arguments: [any SQLArgument] = []
        func match(_ condition: String, _ values: any SQLArgument...) { conditions.append(condition); arguments += values }
        if let type { match("type = ?", type) }
        if let identity { match("identity = ?", identity) }
        if let user {
            match(#"("user" = ? OR ("user" IS NULL AND circuit IN (SELECT circuit FROM audit WHERE "user" = ? AND circuit IS NOT NULL)))"#, user, user)
        }
        if let service { match("service = ?", service) }
        if let circuit { match("circuit = ?", Int64(bitPattern: circuit)) }
        if let since { match("at >= ?", since) }
        if let until { match("at <= ?", until) }
        // A trace id is 32 hex digits (checked by the callers): no LIKE wildcard can hide in it.
        if let trace { match("detail LIKE ?", "%\(trace)%") }
        return try store.read { db in
            try db.all(AuditRow.self, where: conditions.isEmpty ? nil : conditions.joined(separator: " AND "), arguments,
                       orderBy: "seq DESC", limit: limit).reversed().map {
                AuditEvent(seq: $0.seq ?? 0, at: $0.at, type: $0.type, identity: $0.identity, user: $0.user, service: $0.service,
                           circuit: $0.circuit.map { UInt64(bitPattern: $0) }, detail: $0.detail, hash: $0.hash)
            }
        }
    }

    /// Whether every row's hash covers its content and the previous row's hash under the key,
    /// and the signed head names the last row (nothing was cut off the end). `brokenAt` is the
    /// first row that does not hold (for a cut tail: the row after the last one left).
    func verifyChain() throws -> (rows: Int, brokenAt: Int64?) {
        store.waitForBackgroundWrites()
        return try store.read { db in
            var previous = ""
            var count = 0
            var last: (seq: Int64, hash: String)?
            for row in try db.all(AuditRow.self, orderBy: "seq") {
                count += 1
                let hash = Self.hash(previous: previous, type: row.type, at: row.at, identity: row.identity, user: row.user, service: row.service,
                                     circuit: row.circuit.map { UInt64(bitPattern: $0) }, detail: row.detail, key: key)
                guard row.prevHash == previous, row.hash == hash else { return (count, row.seq ?? 0) }
                previous = row.hash
                last = (row.seq ?? 0, row.hash)
            }
            let head = try db.row("SELECT seq, hash, mac FROM auditHead WHERE id = 1")
            guard let head else { return (count, last == nil ? nil : 1) }  // rows but no head: it was removed
            let seq = try head.int64("seq"), hash = try head.string("hash"), mac = try head.string("mac")
            guard mac == Self.headMAC(seq: seq, hash: hash, key: key) else { return (count, seq) }
            guard let last, last.seq == seq, last.hash == hash else { return (count, (last?.seq ?? 0) + 1) }
            return (count, nil)
        }
    }
}

/// What waits for the next append to the trail, in the order it was recorded.
final class AuditQueue: Sendable {
    private let state = Locked<(entries: [(AuditLog.Entry, Date)], appendQueued: Bool)>(([], false))

    /// Queues `entries`; true when no append is queued to take them (the caller queues one).
    func add(_ entries: [(AuditLog.Entry, Date)]) -> Bool {
        state.withLock { state in
            state.entries += entries
            guard !state.appendQueued else { return false }
            state.appendQueued = true
            return true
        }
    }

    /// Everything queued; the next entries need an append of their own.
    func takeAll() -> [(AuditLog.Entry, Date)] {
        state.withLock { state in
            defer { state.entries = []; state.appendQueued = false }
            return state.entries
        }
    }
}
