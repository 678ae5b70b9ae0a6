import XCTest
@testable import Shared

final class RetransmitBufferTests: XCTestCase {
    private func append(_ buffer: RetransmitBuffer, _ sequence: UInt64, _ length: Int) -> Bool {
        guard let slot = buffer.reserve(length) else { return false }
        for i in 0..<length { slot[i] = UInt8(truncatingIfNeeded: Int(sequence) &+ i) }
        buffer.commit(sequence: sequence, length: length)
        return true
    }

    private func held(_ buffer: RetransmitBuffer) -> [(UInt64, [UInt8])] {
        var result: [(UInt64, [UInt8])] = []
        buffer.forEach { result.append(($0, Array($1))) }
        return result
    }

    func test_growsFromSmall_keepingFramesInOrder() {
        let buffer = RetransmitBuffer(capacity: 4000, initialCapacity: 250)
        for sequence in 0..<30 { XCTAssertTrue(append(buffer, UInt64(sequence), 100)) }
        buffer.release(below: 10)
        for sequence in 30..<45 { XCTAssertTrue(append(buffer, UInt64(sequence), 100)) }
        let frames = held(buffer)
        XCTAssertEqual(frames.map(\.0), Array(10..<45))
        XCTAssertEqual(frames[5].1, (0..<100).map { UInt8(truncatingIfNeeded: 15 + $0) })
        XCTAssertFalse(append(buffer, 45, 2000), "the limit still holds")
    }

    func test_framesComeBackInOrder_untilAcknowledged() {
        let buffer = RetransmitBuffer(capacity: 1000)
        for sequence in 0..<5 { XCTAssertTrue(append(buffer, UInt64(sequence), 100)) }
        buffer.release(below: 2)
        let frames = held(buffer)
        XCTAssertEqual(frames.map(\.0), [2, 3, 4])
        XCTAssertEqual(frames[0].1, (0..<100).map { UInt8(truncatingIfNeeded: 2 + $0) })
    }

    func test_fullBuffer_refuses_thenWrapsAfterRelease() {
        let buffer = RetransmitBuffer(capacity: 1000)
        for sequence in 0..<9 { XCTAssertTrue(append(buffer, UInt64(sequence), 100)) }
        XCTAssertFalse(append(buffer, 9, 200), "no room: must refuse, not overwrite")
        buffer.release(below: 3)
        XCTAssertTrue(append(buffer, 9, 200), "must wrap to the freed start")
        XCTAssertEqual(held(buffer).map(\.0), [3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(held(buffer).last?.1.count, 200)
        buffer.release(below: 10)
        XCTAssertTrue(buffer.isEmpty)
        XCTAssertEqual(buffer.usedBytes, 0)
    }

    func test_randomTraffic_neverLosesOrCorruptsAFrame() {
        let buffer = RetransmitBuffer(capacity: 4096, initialCapacity: 512)
        var generator = SystemRandomNumberGenerator()
        var next: UInt64 = 0
        var acked: UInt64 = 0
        for _ in 0..<5000 {
            if Bool.random(using: &generator), append(buffer, next, Int.random(in: 1...700, using: &generator)) {
                next += 1
            } else if acked < next {
                acked = UInt64.random(in: acked...next, using: &generator)
                buffer.release(below: acked)
            }
            let frames = held(buffer)
            XCTAssertEqual(frames.map(\.0), Array(acked..<next))
            for (sequence, bytes) in frames where !bytes.isEmpty {
                XCTAssertEqual(bytes[0], UInt8(truncatingIfNeeded: Int(sequence)))
            }
        }
    }
}
