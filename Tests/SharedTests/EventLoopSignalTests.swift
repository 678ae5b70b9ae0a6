import XCTest
@testable import Shared

/// A peer that goes away while a loop writes to it is an error on that stream, never a signal
/// that ends the whole process.
final class EventLoopSignalTests: XCTestCase {
    func test_aLoop_ignoresSIGPIPE() throws {
        signal(SIGPIPE, SIG_DFL)
        let loop = try EventLoop.startThread(name: "sigpipe")
        defer { loop.stop() }
        var current = sigaction()
        XCTAssertEqual(sigaction(SIGPIPE, nil, &current), 0)
        XCTAssertEqual(unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self), unsafeBitCast(SIG_IGN, to: Int.self),
                       "SIGPIPE is not ignored once an event loop exists")
    }
}
