import Foundation
import XCTest
@testable import Shared

/// The network's own PostgreSQL server, as `topology up` starts it.
final class LocalPostgresTests: XCTestCase {
    /// Started from a working directory its server user cannot enter, whose name holds a "1":
    /// psql then warns about that directory, and the warning must not pass for "the database
    /// exists" (it did once: `topology up` failed on a checkout in /tmp/fresh-QzB1).
    func test_start_createsTheDatabase_whateverTheWorkingDirectoryIsCalled() throws {
        guard geteuid() == 0 else { throw XCTSkip("the server runs as another user only when we are root") }
        let base = NSTemporaryDirectory() + "portless-pg-cwd-\(UUID().uuidString.prefix(8))"
        let closed = base + "/closed-1-QzB1"
        try FileManager.default.createDirectory(atPath: closed, withIntermediateDirectories: true)
        chmod(closed, 0o700)
        let postgres = LocalPostgres(directory: base + "/pg")
        let previous = FileManager.default.currentDirectoryPath
        defer {
            FileManager.default.changeCurrentDirectoryPath(previous)
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: base)
        }
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(closed))
        try postgres.start()
        FileManager.default.changeCurrentDirectoryPath(previous)
        // The database answers: a query in it runs.
        let query = base + "/query.sql"
        try "SELECT 1;".write(toFile: query, atomically: true, encoding: .utf8)
        XCTAssertNoThrow(try postgres.load(query, into: LocalPostgres.database))
    }
}
