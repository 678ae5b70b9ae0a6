import Foundation
import Shared

struct ToolPinRow: Codable, StoreRecord {
    static let table = "toolPin"
    static let primaryKey = ["service", "tool"]
    var service: String
    var tool: String
    var approvedHash: String
    var pendingHash: String?
    var updatedAt: Date

    var pin: ToolPin { ToolPin(service: service, tool: tool, approvedHash: approvedHash, pendingHash: pendingHash, updatedAt: updatedAt) }
}

/// MCP tool definitions pinned by hash, per gateway service. The first definition a gateway
/// reports is pinned; a different one later waits (and its tool stays hidden) until an operator
/// approves it. Held in memory, written through to SQLite.
final class ToolPins: Sendable {
    private let store: Store
    private let audit: AuditLog
    private let pins: Locked<[String: [String: ToolPinRow]]>

    init(store: Store, audit: AuditLog) throws {
        self.store = store
        self.audit = audit
        pins = Locked([:])
        try reload()
    }

    /// Reads the pins again (another controller sharing the database pinned or approved some).
    func reload() throws {
        let rows = try store.read { try $0.all(ToolPinRow.self) }
        let fresh = Dictionary(grouping: rows, by: \.service).mapValues { Dictionary(uniqueKeysWithValues: $0.map { ($0.tool, $0) }) }
        pins.withLock { $0 = fresh }
    }

    /// `tool` → approved hash.
    func approved(service: String) -> [String: String] {
        pins.withLock { ($0[service] ?? [:]).mapValues(\.approvedHash) }
    }

    func list(service: String?) -> [ToolPin] {
        pins.withLock { all in
            all.filter { service == nil || $0.key == service }.values.flatMap(\.values).map(\.pin)
                .sorted { ($0.service, $0.tool) < ($1.service, $1.tool) }
        }
    }

    /// Pins what is new, records what changed, and returns whether anything was written.
    @discardableResult
    func report(service: String, hashes: [String: String], reporter: String) throws -> Bool {
        let now = Date()
        let changes: [(ToolPinRow, AuditLog.EventType)] = pins.withLock { all in
            var current = all[service] ?? [:]
            var changes: [(ToolPinRow, AuditLog.EventType)] = []
            for (tool, hash) in hashes {
                if var row = current[tool] {
                    let pending: String? = row.approvedHash == hash ? nil : hash
                    guard row.pendingHash != pending else { continue }
                    row.pendingHash = pending
                    row.updatedAt = now
                    current[tool] = row
                    if pending != nil { changes.append((row, .mcpToolChanged)) }
                    else { changes.append((row, .mcpToolApproved)) }
                } else {
                    let row = ToolPinRow(service: service, tool: tool, approvedHash: hash, pendingHash: nil, updatedAt: now)
                    current[tool] = row
                    changes.append((row, .mcpToolPinned))
                }
            }
            all[service] = current
            return changes
        }
        guard !changes.isEmpty else { return false }
        try store.write { db in for (row, _) in changes { try db.save(row) } }
        for (row, type) in changes {
            let detail: String
            switch type {
            case .mcpToolChanged: detail = "tool '\(row.tool)' definition changed to \(row.pendingHash ?? "") (approved \(row.approvedHash)); hidden until approved"
            case .mcpToolApproved: detail = "tool '\(row.tool)' definition is back to the approved one"
            default: detail = "tool '\(row.tool)' pinned at \(row.approvedHash) as first seen by '\(reporter)'"
            }
            audit.record(type, identity: reporter, service: service, detail: detail)
        }
        return true
    }

    /// Approves the pending definitions of `tools` (all pending ones when empty); returns the
    /// tools approved.
    func approve(service: String, tools: [String], by operatorName: String) throws -> [String] {
        let now = Date()
        let approved: [ToolPinRow] = pins.withLock { all in
            var current = all[service] ?? [:]
            var approved: [ToolPinRow] = []
            for (tool, var row) in current where (tools.isEmpty || tools.contains(tool)) {
                guard let pending = row.pendingHash else { continue }
                row.approvedHash = pending
                row.pendingHash = nil
                row.updatedAt = now
                current[tool] = row
                approved.append(row)
            }
            all[service] = current
            return approved
        }
        try store.write { db in for row in approved { try db.save(row) } }
        for row in approved {
            audit.record(.mcpToolApproved, identity: operatorName, service: service, detail: "tool '\(row.tool)' approved at \(row.approvedHash)")
        }
        return approved.map(\.tool).sorted()
    }
}
