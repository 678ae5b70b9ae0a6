import XCTest
@testable import Shared

final class FrameCodecTests: XCTestCase {
    private func decode(_ bytes: [UInt8], maxFrame: Int = TransportLimits.defaultMaxFrame) -> FrameDecoder.Result {
        bytes.withUnsafeBytes { FrameDecoder.decode($0, maxFrame: maxFrame) }
    }

    func test_roundTrip_preservesHeaderAndBody() {
        let body = Array("sealed bytes".utf8)
        let encoded = FrameEncoder.encode(type: .data, circuitID: 0xDEAD_BEEF_0102, sequence: 42, flags: 7, headers: [1, 2, 3], body: body)
        encoded.withUnsafeBytes { raw in
            guard case .frame(let frame, let consumed) = FrameDecoder.decode(raw) else { return XCTFail("no frame") }
            XCTAssertEqual(consumed, encoded.count)
            XCTAssertEqual(frame.header.type, .data)
            XCTAssertEqual(frame.header.circuitID, 0xDEAD_BEEF_0102)
            XCTAssertEqual(frame.header.sequence, 42)
            XCTAssertEqual(frame.header.flags, 7)
            XCTAssertEqual(Array(frame.headers), [1, 2, 3])
            XCTAssertEqual(Array(frame.body), body)
        }
    }

    func test_everyTruncation_needsMore() {
        let encoded = FrameEncoder.encode(type: .control, body: Array(repeating: 9, count: 100))
        for length in 0..<encoded.count {
            guard case .needMore(let total) = decode(Array(encoded.prefix(length))) else {
                return XCTFail("prefix of \(length) bytes was not 'needMore'")
            }
            XCTAssertGreaterThan(total, length)
        }
    }

    func test_twoFramesBackToBack_decodeOneAtATime() {
        let first = FrameEncoder.encode(type: .heartbeat, body: [1])
        let second = FrameEncoder.encode(type: .data, circuitID: 5, body: [2, 3])
        guard case .frame(let frame, let consumed) = decode(first + second) else { return XCTFail("no frame") }
        XCTAssertEqual(frame.header.type, .heartbeat)
        XCTAssertEqual(consumed, first.count)
    }

    func test_oversizeFrame_isInvalid() {
        let encoded = FrameEncoder.encode(type: .data, body: Array(repeating: 0, count: 2000))
        guard case .invalid(.oversize(let length, let limit)) = decode(Array(encoded.prefix(FrameHeader.size)), maxFrame: 1024) else {
            return XCTFail("oversize header was accepted")
        }
        XCTAssertEqual(length, encoded.count)
        XCTAssertEqual(limit, 1024)
    }

    func test_badMagicAndVersionAndType_areInvalid() {
        var encoded = FrameEncoder.encode(type: .data, body: [1])
        encoded[0] = 0x47
        guard case .invalid(.badMagic) = decode(encoded) else { return XCTFail("bad magic accepted") }
        encoded = FrameEncoder.encode(type: .data, body: [1])
        encoded[2] = 99
        guard case .invalid(.unsupportedVersion(99)) = decode(encoded) else { return XCTFail("bad version accepted") }
        encoded = FrameEncoder.encode(type: .data, body: [1])
        encoded[3] = 200
        guard case .invalid(.unknownType(200)) = decode(encoded) else { return XCTFail("bad type accepted") }
    }

    func test_randomBytes_neverCrashAndNeverYieldAnOversizeFrame() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...96, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if length >= 4 && Bool.random(using: &generator) { bytes[0] = 0x50; bytes[1] = 0x4C; bytes[2] = 1; bytes[3] = UInt8.random(in: 1...9, using: &generator) }
            switch decode(bytes, maxFrame: 64) {
            case .frame(let frame, let consumed):
                XCTAssertLessThanOrEqual(consumed, bytes.count)
                XCTAssertLessThanOrEqual(frame.header.frameLength, 64)
            case .needMore(let total):
                XCTAssertGreaterThan(total, bytes.count)
            case .invalid:
                break
            }
        }
    }
}
