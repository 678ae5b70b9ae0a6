import ArgumentParser
import Foundation
import Logging
import XCTest
@testable import Shared

final class JSONLogHandlerTests: XCTestCase {
    private func decode(_ line: [UInt8]) throws -> [String: Any] {
        XCTAssertEqual(line.last, UInt8(ascii: "\n"), "a line ends with a newline")
        XCTAssertEqual(line.filter { $0 == UInt8(ascii: "\n") }.count, 1, "one line per record")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
    }

    func test_aRecord_isOneJSONObject_withItsFieldsAndMetadata() throws {
        let time = Date(timeIntervalSince1970: 1_796_169_568.123)  // 2026-12-01T23:59:28.123Z
        let line = JSONLogHandler.line(time: time, level: .warning, label: "portless.router",
                                       message: "peer \"r2\" said:\nno\u{1}", source: "EdgeRouter",
                                       metadata: ["router": "r1", "circuits": .stringConvertible(3),
                                                  "path": .array(["r1", "r2"]), "peer": .dictionary(["name": "r2"]),
                                                  "level": "spoofed", "message": "also spoofed"])
        let record = try decode(line)
        XCTAssertEqual(record["time"] as? String, "2026-12-01T23:59:28.123Z")
        XCTAssertEqual(record["level"] as? String, "warning")
        XCTAssertEqual(record["logger"] as? String, "portless.router")
        XCTAssertEqual(record["message"] as? String, "peer \"r2\" said:\nno\u{1}")
        XCTAssertEqual(record["source"] as? String, "EdgeRouter")
        XCTAssertEqual(record["router"] as? String, "r1")
        XCTAssertEqual(record["circuits"] as? String, "3")
        XCTAssertEqual(record["path"] as? [String], ["r1", "r2"])
        XCTAssertEqual((record["peer"] as? [String: String])?["name"], "r2")
        // Metadata cannot overwrite the record's own fields.
        XCTAssertEqual(record["level_"] as? String, "spoofed")
        XCTAssertEqual(record["message_"] as? String, "also spoofed")
    }

    func test_timestamps_padEveryField() {
        XCTAssertEqual(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 1_772_406_245.007)), "2026-03-01T23:04:05.007Z")
    }

    func test_handler_mergesItsMetadata_andKeepsItsLevel() throws {
        let lines = Locked<[[UInt8]]>([])
        var handler = JSONLogHandler(label: "test", write: { line in lines.withLock { $0.append(line) } })
        handler.logLevel = .notice
        handler[metadataKey: "identity"] = "laptop"
        var logger = Logger(label: "test", factory: { _ in handler })
        logger.info("dropped: below the level")
        logger[metadataKey: "service"] = "hello"
        logger.error("kept", metadata: ["identity": "override"])
        let written = lines.current
        XCTAssertEqual(written.count, 1)
        let record = try decode(try XCTUnwrap(written.first))
        XCTAssertEqual(record["message"] as? String, "kept")
        XCTAssertEqual(record["identity"] as? String, "override")
        XCTAssertEqual(record["service"] as? String, "hello")
    }

    func test_logFormatOption_parsesAndRefusesWhatItDoesNotKnow() throws {
        XCTAssertEqual(try LogOptions.parse(["--log-format", "json"]).format, .json)
        XCTAssertEqual(try LogOptions.parse(["--log-format", "text"]).format, .text)
        XCTAssertThrowsError(try LogOptions.parse(["--log-format", "yaml"])) { error in
            XCTAssertTrue(LogOptions.message(for: error).contains("yaml"), LogOptions.message(for: error))
        }
    }
}
