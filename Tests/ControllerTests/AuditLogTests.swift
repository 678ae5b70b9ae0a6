import GRDB
import XCTest
@testable import Controller

final class AuditLogTests: XCTestCase {
    /// A log in a fresh directory (the database, its WAL and shared-memory files), removed by the caller.
    private func makeLog() throws -> (AuditLog, String) {
        let directory = NSTemporaryDirectory() + "portless-audit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (AuditLog(store: try Store(path: directory + "/audit.db")), directory)
    }

    func test_chainVerifies_andFiltersSelect() throws {
        let (log, path) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for i in 0..<300 {
            log.record(i % 2 == 0 ? .circuitOpened : .circuitClosed, identity: i % 3 == 0 ? "alice" : "bob", service: "sql",
                       circuit: UInt64(i), detail: "event \(i)")
        }
        let (rows, brokenAt) = try log.verifyChain()
        XCTAssertEqual(rows, 300)
        XCTAssertNil(brokenAt)
        let alice = try log.events(limit: 1000, identity: "alice")
        XCTAssertEqual(alice.count, 100)
        XCTAssertTrue(alice.allSatisfy { $0.identity == "alice" })
        XCTAssertEqual(try log.events(limit: 1000, circuit: 7).map(\.detail), ["event 7"])
        XCTAssertEqual(try log.events(limit: 1000, since: Date().addingTimeInterval(60)).count, 0)
    }

    func test_trail_refusesUpdatesAndDeletes() throws {
        let (log, path) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: path) }
        log.record(.policyChanged, detail: "x")
        _ = try log.events(limit: 1)
        XCTAssertThrowsError(try log.store.pool.write { try $0.execute(sql: "UPDATE audit SET detail = 'forged'") })
        XCTAssertThrowsError(try log.store.pool.write { try $0.execute(sql: "DELETE FROM audit") })
    }
}
