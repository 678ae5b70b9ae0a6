import Foundation
import GatewayKit
import Shared
import XCTest

final class JSONValueCodecTests: XCTestCase {
    func testRoundTrip_keepsTypes_andEscapes() throws {
        let text = #"{"b":true,"f":false,"n":null,"i":42,"d":0.5,"big":12345678901,"neg":-3,"s":"a\"b\\c\nd\u0001é/","a":[1,"x",{"k":[]}],"e":{}}"#
        let value = try JSONValue.parse(Data(text.utf8))
        XCTAssertEqual(value["b"], .bool(true))
        XCTAssertEqual(value["f"], .bool(false))
        XCTAssertEqual(value["n"], .null)
        XCTAssertEqual(value["i"], .number(42))
        XCTAssertEqual(value["big"], .number(12345678901))
        XCTAssertEqual(value["s"], .string("a\"b\\c\nd\u{1}é/"))
        let again = try JSONValue.parse(value.encoded())
        XCTAssertEqual(again, value)
        let viaFoundation = try JSONDecoder().decode(JSONValue.self, from: value.encoded())
        XCTAssertEqual(viaFoundation, value, "what we write, Foundation reads the same")
        XCTAssertEqual(String(decoding: JSONValue.number(1).encoded(), as: UTF8.self), "1")
        XCTAssertEqual(String(decoding: JSONValue.number(.infinity).encoded(), as: UTF8.self), "0", "JSON has no infinity")
        XCTAssertThrowsError(try JSONValue.parse(Data("{bad".utf8)))
    }
}
