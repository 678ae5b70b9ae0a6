import XCTest
@testable import Shared

/// W3C Trace Context: what a `traceparent` must be, and what is ignored as if absent.
final class TraceContextTests: XCTestCase {
    private let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    private let span = "00f067aa0ba902b7"

    func test_aValidTraceparent_parsesAndPrintsTheSame() throws {
        let context = try XCTUnwrap(TraceContext(traceparent: "00-\(trace)-\(span)-01"))
        XCTAssertEqual(context.traceID, trace)
        XCTAssertEqual(context.spanID, span)
        XCTAssertTrue(context.sampled)
        XCTAssertEqual(context.traceparent, "00-\(trace)-\(span)-01")
        XCTAssertFalse(try XCTUnwrap(TraceContext(traceparent: "00-\(trace)-\(span)-00")).sampled)
        // A later version may add fields; what version 00 defines is read.
        XCTAssertEqual(TraceContext(traceparent: "01-\(trace)-\(span)-01-whatever")?.traceID, trace)
    }

    func test_malformedTraceparents_areRefused() {
        for bad in ["", "00-\(trace)-\(span)", "00-\(trace.uppercased())-\(span)-01", "00-\(String(repeating: "0", count: 32))-\(span)-01",
                    "00-\(trace)-\(String(repeating: "0", count: 16))-01", "ff-\(trace)-\(span)-01", "00-\(trace)-\(span)-01-extra",
                    "00-\(trace.dropLast())-\(span)-01", "00-\(trace)-\(span)-1", "0x-\(trace)-\(span)-01", "00-\(trace)-\(span)-zz"] {
            XCTAssertNil(TraceContext(traceparent: bad), bad)
        }
    }

    func test_childrenKeepTheTrace_andRootsStartNewOnes() {
        let root = TraceContext.root()
        XCTAssertNotNil(TraceContext(traceparent: root.traceparent), "a root is a valid traceparent")
        let child = root.child()
        XCTAssertEqual(child.traceID, root.traceID)
        XCTAssertNotEqual(child.spanID, root.spanID)
        XCTAssertNotEqual(TraceContext.root().traceID, root.traceID)
    }
}
