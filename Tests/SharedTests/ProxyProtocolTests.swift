import XCTest
@testable import Shared

final class ProxyProtocolTests: XCTestCase {
    func test_encodedHeader_parsesBackToTheCaller() {
        let header = ProxyProtocol.encode(caller: "agent-7", circuitID: 42)
        XCTAssertEqual(ProxyProtocol.parse(header + Array("GET / HTTP/1.1\r\n".utf8)),
                       .header(.init(identity: "agent-7", circuitID: 42), length: header.count))
    }

    func test_everyTruncation_needsMore() {
        let header = ProxyProtocol.encode(caller: "agent-7", circuitID: 42)
        for length in 1..<header.count {
            XCTAssertEqual(ProxyProtocol.parse(header.prefix(length)), .needMore, "prefix of \(length)")
        }
    }

    func test_plainClient_isNotAHeader() {
        XCTAssertEqual(ProxyProtocol.parse(Array("GET / HTTP/1.1\r\n".utf8)), .absent)
        XCTAssertEqual(ProxyProtocol.parse([0x0D, 0x0A, 0x0D, 0x0A, 0x01]), .absent)
    }

    func test_malformedHeaders_areInvalid_notCrashes() {
        var header = ProxyProtocol.encode(caller: "a", circuitID: 1)
        header[12] = 0x11  // version 1
        guard case .invalid = ProxyProtocol.parse(header) else { return XCTFail("version 1 accepted") }
        header = ProxyProtocol.encode(caller: "a", circuitID: 1)
        header[header.count - 3] = 0xFF  // the last TLV (circuit "1") claims a length past the end
        guard case .invalid = ProxyProtocol.parse(header) else { return XCTFail("overrunning TLV accepted") }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let random = ProxyProtocol.signature + [0x21, 0x11] + (0..<Int.random(in: 0...80, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = ProxyProtocol.parse(random)
        }
    }
}
