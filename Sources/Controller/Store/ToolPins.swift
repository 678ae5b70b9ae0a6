import Crypto
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
    var approvedDefinition: String?
    var pendingDefinition: String?

    var pin: ToolPin {
        ToolPin(service: service, tool: tool, approvedHash: approvedHash, pendingHash: pendingHash, updatedAt: updatedAt,
                approvedDefinition: approvedDefinition, pendingDefinition: pendingDefinition)
    }
}

/// MCP tool definitions pinned by hash, per gateway service. The first definition a gateway
/// reports is pinned; a different one later waits (and its tool stays hidden) until an operator
/// approves it. Held in memory, written through to the store. The definitions behind the
/// hashes are kept too, so an operator sees what changed before approving it.
final class ToolPins: Sendable {
    private let store: Store
    private let audit: AuditLog
    private let pins: Locked<[String: [String: ToolPinRow]]>
    /// What each gateway offers, as it last reported it with these definitions.
    let catalogs: GatewayCatalogs

    init(store: Store, audit: AuditLog) throws {
        self.store = store
        self.audit = audit
        pins = Locked([:])
        catalogs = try GatewayCatalogs(store: store)
        try reload()
    }

    /// Reads the pins again (another controller sharing the database pinned or approved some).
    func reload() throws {
        try catalogs.reload()
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

    /// Takes one part of a gateway's catalog report: pins its tools, and keeps the catalog once
    /// the report is complete. Returns whether anything was written. A definition that is not
    /// what its hash says is refused: an operator approves what the pin holds, nothing else.
    @discardableResult
    func receive(service: String, report: String, entries: [CatalogEntry], complete: Bool, reporter: String) throws -> Bool {
        var hashes: [String: String] = [:], definitions: [String: String] = [:]
        for entry in entries where entry.kind == .tool {
            guard let hash = entry.hash else { throw CatalogReportError("tool '\(entry.name)' comes without its definition's hash") }
            if let definition = entry.definition {
                guard Hex.encode(SHA256.hash(data: Data(definition.utf8))) == hash else {
                    throw CatalogReportError("the definition reported for tool '\(entry.name)' is not the one its hash \(hash) pins")
                }
                definitions[entry.name] = definition
            }
            hashes[entry.name] = hash
        }
        let pinned = try self.report(service: service, hashes: hashes, definitions: definitions, reporter: reporter)
        let cataloged = try catalogs.receive(service: service, report: report, entries: entries, complete: complete, reporter: reporter)
        return pinned || cataloged
    }

    /// Pins what is new, records what changed, and returns whether anything was written.
    @discardableResult
    func report(service: String, hashes: [String: String], definitions: [String: String] = [:], reporter: String) throws -> Bool {
        let now = Date()
        let changes: [(ToolPinRow, AuditLog.EventType?)] = pins.withLock { all in
            var current = all[service] ?? [:]
            var changes: [(ToolPinRow, AuditLog.EventType?)] = []
            for (tool, hash) in hashes {
                let definition = definitions[tool]
                if var row = current[tool] {
                    let pending: String? = row.approvedHash == hash ? nil : hash
                    guard row.pendingHash != pending else {
                        // Pinned before definitions were reported: keep the one that matches now.
                        if pending == nil, row.approvedDefinition == nil, let definition {
                            row.approvedDefinition = definition
                            current[tool] = row
                            changes.append((row, nil))
                        }
                        continue
                    }
                    row.pendingHash = pending
                    row.pendingDefinition = pending == nil ? nil : definition
                    if pending == nil, row.approvedDefinition == nil { row.approvedDefinition = definition }
                    row.updatedAt = now
                    current[tool] = row
                    if pending != nil { changes.append((row, .mcpToolChanged)) }
                    else { changes.append((row, .mcpToolApproved)) }
                } else {
                    let row = ToolPinRow(service: service, tool: tool, approvedHash: hash, pendingHash: nil, updatedAt: now,
                                         approvedDefinition: definition, pendingDefinition: nil)
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
            guard let type else { continue }
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
                row.approvedDefinition = row.pendingDefinition
                row.pendingHash = nil
                row.pendingDefinition = nil
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
