import Foundation
@testable import Shared
import XCTest

/// The dial path's messages skip `Codable` at both ends: each side must still read exactly what
/// the other would have read through `JSONEncoder`/`JSONDecoder`, whichever of the two wrote it.
final class DialPathMessagesTests: XCTestCase {
    private let awkward = "a \"quoted\" \\ name\n\u{1}-é-🙂"

    private var messages: [ControlMessage] {
        [
            .dial(session: awkward),
            .dialed(circuitID: UInt64.max, hostIdentity: awkward, grant: "eyJ.eyJ.sig"),
            .createCircuit(sessionID: "s-1", service: awkward, dialer: "alice"),
            .circuitRoute(circuitID: 1 << 60, terminatorID: "t", hostIdentity: "host", nextHop: nil, grant: "g"),
            .circuitRoute(circuitID: 0, terminatorID: "t", hostIdentity: "host", nextHop: awkward, grant: "g"),
            .incomingCircuit(circuitID: 42, service: "svc", caller: awkward, terminatorID: "term", grant: "grant"),
            .circuitClosed(circuitID: 7, reason: awkward),
            .failure(message: awkward),
        ]
    }

    private func canonical(_ envelope: ControlEnvelope) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(envelope)
    }

    func test_whatTheFastPathWrites_JSONDecoderReadsAsTheSameMessage() throws {
        for message in messages {
            let envelope = ControlEnvelope(id: 3, replyTo: UInt32.max, message: message)
            let bytes = try XCTUnwrap(DialPathMessages.encode(envelope), "\(message)")
            let decoded = try JSONDecoder().decode(ControlEnvelope.self, from: Data(bytes))
            XCTAssertEqual(try canonical(decoded), try canonical(envelope))
        }
    }

    func test_whatJSONEncoderWrites_theFastPathReadsAsTheSameMessage() throws {
        for message in messages {
            let envelope = ControlEnvelope(id: 9, replyTo: 0, message: message)
            let bytes = try JSONEncoder().encode(envelope)
            let decoded = try XCTUnwrap(bytes.withUnsafeBytes { DialPathMessages.decode($0) }, String(decoding: bytes, as: UTF8.self))
            XCTAssertEqual(try canonical(decoded), try canonical(envelope))
        }
    }

    func test_otherMessages_areLeftToCodable() throws {
        let envelope = ControlEnvelope(id: 1, message: .removeTerminator(id: "t"))
        XCTAssertNil(DialPathMessages.encode(envelope))
        let bytes = try JSONEncoder().encode(envelope)
        XCTAssertNil(bytes.withUnsafeBytes { DialPathMessages.decode($0) })
    }

    /// A body that names a dial-path case but does not hold what it needs is not guessed at: it
    /// goes to `JSONDecoder`, which says what is wrong.
    func test_malformedDialPathBodies_areNotRead() {
        let bodies = [
            #"{"id":1,"replyTo":0,"message":{"dial":{}}}"#,
            #"{"id":1,"replyTo":0,"message":{"dial":{"session":5}}}"#,
            #"{"id":-1,"replyTo":0,"message":{"dial":{"session":"s"}}}"#,
            #"{"id":4294967296,"replyTo":0,"message":{"dial":{"session":"s"}}}"#,
            #"{"id":1,"replyTo":0,"message":{"dialed":{"circuitID":-3,"hostIdentity":"h","grant":"g"}}}"#,
            #"{"id":1,"replyTo":0,"message":{"dialed":{"circuitID":1.5,"hostIdentity":"h","grant":"g"}}}"#,
            #"{"id":1,"replyTo":0,"message":{"circuitRoute":{"circuitID":1,"terminatorID":"t","hostIdentity":"h","nextHop":3,"grant":"g"}}}"#,
            #"{"id":1,"replyTo":0,"message":{"dial":{"session":"s"},"ok":{}}}"#,
            #"{"id":1,"replyTo":0,"message":{"dial":{"session":"s"}}"#,
            #"{"id":1,"replyTo":0,"message":{"dial""#,
            #"{"id":1,"id":2,"replyTo":0,"message":{"dial":{"session":"s"}}}"#,
            "",
        ]
        for body in bodies {
            let bytes = Array(body.utf8)
            XCTAssertNil(bytes.withUnsafeBytes { DialPathMessages.decode($0) }, body)
        }
    }

    func test_randomBytes_neverCrashTheReader() {
        var generator = SystemRandomNumberGenerator()
        let prefix = Array(#"{"id":1,"replyTo":0,"message":{"dialed":{"#.utf8)
        for _ in 0..<2_000 {
            let tail = (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = (prefix + tail).withUnsafeBytes { DialPathMessages.decode($0) }
        }
    }
}
