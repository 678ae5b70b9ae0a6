import Foundation
import Shared

struct GatewayCatalogRow: Codable, StoreRecord {
    static let table = "gatewayCatalog"
    static let primaryKey = ["service"]
    var service: String
    var reporter: String
    var updatedAt: Date
    var entries: [CatalogEntry]

    var catalog: GatewayCatalog { GatewayCatalog(service: service, reporter: reporter, updatedAt: updatedAt, entries: entries) }
}

/// What each MCP gateway last reported it offers — tools, resources, templates, prompts, under
/// the names its callers see and the upstream names its policy matches — so the console can
/// show every identity exactly what its gateway shows it. Reports come in parts; a report is
/// kept once its last part arrives. Held in memory, written through to the store.
final class GatewayCatalogs: Sendable {
    /// Bounds on what a tunneler can make the controller hold for reports not yet complete.
    static let maxEntriesPerReport = 200_000
    static let maxOpenReports = 64
    static let openReportLifetime: TimeInterval = 300

    private struct OpenReport {
        var service: String
        var reporter: String
        var started: Date
        var entries: [CatalogEntry]
    }
    private struct State {
        var catalogs: [String: GatewayCatalog] = [:]
        var open: [String: OpenReport] = [:]
    }

    private let store: Store
    private let state = Locked(State())

    init(store: Store) throws {
        self.store = store
        try reload()
    }

    func reload() throws {
        let rows = try store.read { try $0.all(GatewayCatalogRow.self) }
        state.withLock { $0.catalogs = Dictionary(uniqueKeysWithValues: rows.map { ($0.service, $0.catalog) }) }
    }

    func catalog(of service: String) -> GatewayCatalog? {
        state.withLock { $0.catalogs[service] }
    }

    /// Takes one part of a report; returns whether a complete report changed the stored catalog.
    func receive(service: String, report: String, entries: [CatalogEntry], complete: Bool, reporter: String, now: Date = Date()) throws -> Bool {
        let finished: GatewayCatalog? = try state.withLock { state in
            state.open = state.open.filter { now.timeIntervalSince($0.value.started) < Self.openReportLifetime }
            var open = state.open[report] ?? OpenReport(service: service, reporter: reporter, started: now, entries: [])
            guard open.service == service, open.reporter == reporter else {
                throw CatalogReportError("report \(report) was begun for another service or by another identity")
            }
            guard open.entries.count + entries.count <= Self.maxEntriesPerReport else {
                state.open[report] = nil
                throw CatalogReportError("a catalog of more than \(Self.maxEntriesPerReport) entries is refused")
            }
            open.entries += entries.map { entry in
                var kept = entry
                kept.definition = nil  // the pins keep definitions
                return kept
            }
            guard complete else {
                guard state.open[report] != nil || state.open.count < Self.maxOpenReports else {
                    throw CatalogReportError("too many catalog reports under way; finish one first")
                }
                state.open[report] = open
                return nil
            }
            state.open[report] = nil
            if let current = state.catalogs[service], current.entries == open.entries { return nil }
            let catalog = GatewayCatalog(service: service, reporter: reporter, updatedAt: now, entries: open.entries)
            state.catalogs[service] = catalog
            return catalog
        }
        guard let finished else { return false }
        try store.write { try $0.save(GatewayCatalogRow(service: finished.service, reporter: finished.reporter, updatedAt: finished.updatedAt, entries: finished.entries)) }
        return true
    }
}

struct CatalogReportError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
