import Crypto
import XCTest
@testable import Controller

final class AuditLogTests: XCTestCase {
    /// A log in a fresh directory (the database, its WAL and shared-memory files), removed by the caller.
    private func makeLog() throws -> (AuditLog, String) {
        let directory = NSTemporaryDirectory() + "portless-audit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (AuditLog(store: try Store(path: directory + "/audit.db"), key: SymmetricKey(size: .bits256)), directory)
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

    /// An append waits a few milliseconds for more events to join it; nothing recorded is lost to
    /// that wait: a read sees what was recorded before it, and closing the store writes the rest.
    func test_eventsGatheredForOneAppend_areSeenByTheNextRead_andKeptByClose() throws {
        let (log, path) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: path) }
        log.record(.circuitOpened, identity: "alice", circuit: 1)
        XCTAssertEqual(try log.events(limit: 10).map(\.circuit), [1], "a read right after recording")
        log.record(.circuitClosed, identity: "alice", circuit: 1)
        log.record(.circuitOpened, identity: "bob", circuit: 2)
        log.store.close()
        let reopened = AuditLog(store: try Store(path: path + "/audit.db"), key: log.key)
        XCTAssertEqual(try reopened.events(limit: 10).map(\.circuit), [1, 1, 2], "what close found queued")
        XCTAssertNil(try reopened.verifyChain().brokenAt)
        reopened.store.close()
    }

    func test_trail_refusesUpdatesAndDeletes() throws {
        let (log, path) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: path) }
        log.record(.policyChanged, detail: "x")
        _ = try log.events(limit: 1)
        XCTAssertThrowsError(try log.store.write { try $0.execute("UPDATE audit SET detail = 'forged'") })
        XCTAssertThrowsError(try log.store.write { try $0.execute("DELETE FROM audit") })
    }

    /// What someone who can write the database (but not read the controller's key) can try.
    private func tamper(_ log: AuditLog, _ sql: String) throws {
        try log.store.write { db in
            try db.execute("DROP TRIGGER IF EXISTS audit_no_update")
            try db.execute("DROP TRIGGER IF EXISTS audit_no_delete")
            try db.execute(sql)
        }
    }

    func test_aRewrittenRow_isFound_evenWithItsHashRecomputedWithoutTheKey() throws {
        let (log, path) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for i in 0..<10 { log.record(.mcpRequest, identity: "agent", detail: "call \(i)") }
        _ = try log.events(limit: 1)
        try tamper(log, "UPDATE audit SET detail = 'nothing happened' WHERE seq = 4")
        XCTAssertEqual(try log.verifyChain().brokenAt, 4)
        // Recompute the row's hash as an unkeyed chain would let anyone do: it still does not hold.
        let row = try log.store.read { try $0.one(AuditRow.self, key: 4) }
        let canonical = [row?.prevHash ?? "", "mcp.request", String(Int64(((row?.at.timeIntervalSince1970 ?? 0) * 1000).rounded())),
                         "agent", "", "", "nothing happened"].joined(separator: "\u{1F}")
        let plain = SHA256.hash(data: Data(canonical.utf8)).map { String(format: "%02x", $0) }.joined()
        try tamper(log, "UPDATE audit SET hash = '\(plain)' WHERE seq = 4")
        XCTAssertEqual(try log.verifyChain().brokenAt, 4)
    }

    func test_aCutTail_isFound() throws {
        let (log, path) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: path) }
        for i in 0..<10 { log.record(.mcpRequest, identity: "agent", detail: "call \(i)") }
        XCTAssertNil(try log.verifyChain().brokenAt)
        try tamper(log, "DELETE FROM audit WHERE seq > 7")
        XCTAssertEqual(try log.verifyChain().brokenAt, 8, "the last three rows are gone: the signed head says so")
        try tamper(log, "DELETE FROM auditHead")
        XCTAssertNotNil(try log.verifyChain().brokenAt, "removing the head too does not hide it")
    }

    func test_theChain_doesNotVerifyUnderAnotherKey() throws {
        let (log, path) = try makeLog()
        defer { try? FileManager.default.removeItem(atPath: path) }
        log.record(.policyChanged, detail: "x")
        _ = try log.events(limit: 1)
        let other = AuditLog(store: log.store, key: SymmetricKey(size: .bits256))
        XCTAssertEqual(try other.verifyChain().brokenAt, 1)
    }
}
