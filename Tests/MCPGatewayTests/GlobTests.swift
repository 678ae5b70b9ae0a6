import GatewayKit
import Shared
import XCTest

final class GlobTests: XCTestCase {
    func testWildcards() {
        XCTAssertTrue(Glob.matches("read_*", "read_file"))
        XCTAssertTrue(Glob.matches("*", ""))
        XCTAssertTrue(Glob.matches("a?c", "abc"))
        XCTAssertFalse(Glob.matches("a?c", "ac"))
        XCTAssertFalse(Glob.matches("read_*", "write_file"))
        XCTAssertTrue(Glob.matches("file:///*", "file:///etc/hosts"))
        XCTAssertTrue(Glob.matches("*_*_*", "a_b_c"))
        XCTAssertFalse(Glob.matches("exact", "exactly"))
    }
}
