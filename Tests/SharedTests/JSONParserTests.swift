import Foundation
import Shared
import XCTest

final class JSONParserTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }
    private func text(_ value: JSONValue) -> String { String(decoding: value.encoded(), as: UTF8.self) }

    func test_integersBeyond2To53_roundTripExactly() throws {
        for literal in ["9223372036854775807", "-9223372036854775808", "18446744073709551615", "9007199254740993",
                        "123456789012345678901234567890", "0.1", "1e400", "-0", "2.50"] {
            let value = try parse(#"{"id":\#(literal)}"#)
            XCTAssertEqual(text(value), #"{"id":\#(literal)}"#, "a forwarded number must keep its text")
        }
        XCTAssertEqual(try parse("9223372036854775807").int64Value, Int64.max)
        XCTAssertNil(try parse("9223372036854775808").int64Value, "never rounded into range")
        XCTAssertNotEqual(try parse("9007199254740993"), try parse("9007199254740992"))
        XCTAssertEqual(try parse("1"), try parse("1.0"), "numerically equal numbers are equal")
    }

    func test_codable_keepsLargeIntegersExact() throws {
        let value = try parse(#"[9223372036854775807, 18446744073709551615, 0.25]"#)
        let decoded = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
        XCTAssertEqual(decoded, value)
    }

    func test_hostileInput_getsAnErrorNeverACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try parse(deep)) { XCTAssertTrue("\($0)".contains("nested deeper")) }
        for bad in ["", " ", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "1e", "\"\\x\"", "\"\\u12\"", "\"a\nb\"", "tru", "nul",
                    "{\"a\" 1}", "[1 2]", "\"unterminated", "1 2", "{\"a\":1,\"a\":2}", "NaN", "Infinity", "+1", ".5"] {
            XCTAssertThrowsError(try parse(bad), "accepted \(bad.debugDescription)")
        }
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0..<64)).map { _ in UInt8.random(in: 0...255) }
            _ = try? JSONValue.parse(Data(bytes))
        }
    }

    func test_duplicateKeys_areRefused_soNoTwoReadersDisagree() {
        XCTAssertThrowsError(try parse(#"{"name":"echo","name":"delete_everything"}"#)) {
            XCTAssertTrue("\($0)".contains("duplicate key 'name'"), "\($0)")
        }
    }

    func test_strings_escapesAndSurrogates() throws {
        XCTAssertEqual(try parse(#""\ud83d\ude00 \u00e9 \/ \t""#), .string("😀 é / \t"))
        XCTAssertEqual(try parse(#""\ud83d""#), .string("\u{FFFD}"), "a lone surrogate is replaced, not a crash")
        XCTAssertEqual(try parse(#"{"k":"plain"}"#)["k"], .string("plain"))
    }

    func test_writer_escapesWhatMustBeEscaped_andRoundTrips() throws {
        let text = "plain \"quoted\" back\\slash\nline\ttab\r\u{01}\u{1F} é 😀 end"
        let written = String(decoding: JSONValue.string(text).encoded(), as: UTF8.self)
        XCTAssertEqual(written, #""plain \"quoted\" back\\slash\nline\ttab\r\u0001\u001f é 😀 end""#)
        XCTAssertEqual(try parse(written), .string(text))
        let document: JSONValue = .object(["b": .array([.null, .bool(true), .number(1.5)]), "a": .string("x")])
        XCTAssertEqual(String(decoding: document.canonicallyEncoded(), as: UTF8.self), #"{"a":"x","b":[null,true,1.5]}"#)
    }

    func test_matchesFoundation_onOrdinaryDocuments() throws {
        let document = #"{"a":[1,2.5,-3e2,true,false,null,"x"],"b":{"c":{"d":[]}},"e":"é\n"}"#
        let ours = try parse(document)
        let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(document.utf8))
        XCTAssertEqual(ours, theirs)
    }

    func test_count_clampsWhatPeersReport() throws {
        XCTAssertEqual(try parse("1e300").count(), 1 << 40)
        XCTAssertEqual(try parse("-5").count(), 0)
        XCTAssertEqual(try parse("\"12\"").count(), 0)
        XCTAssertEqual(try parse("99999999999999999999999").count(limit: 100), 100)
        XCTAssertEqual(try parse("42").count(), 42)
    }
}
