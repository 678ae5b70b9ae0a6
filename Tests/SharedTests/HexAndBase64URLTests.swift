import Foundation
import Shared
import XCTest

final class HexAndBase64URLTests: XCTestCase {
    func testHex_isTwoLowercaseDigitsPerByte() {
        XCTAssertEqual(Hex.encode([0x00, 0x0f, 0xa0, 0xff]), "000fa0ff")
        XCTAssertEqual(Hex.encode([UInt8]()), "")
        let bytes = (0...255).map(UInt8.init)
        XCTAssertEqual(Hex.encode(bytes), bytes.map { String(format: "%02x", $0) }.joined())
    }

    func testBase64URL_roundTripsWithoutPaddingOrUnsafeCharacters() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 251) }
            let text = Base64URL.encode(bytes)
            XCTAssertFalse(text.contains { "+/=".contains($0) }, text)
            XCTAssertEqual(Base64URL.decode(text).map { [UInt8]($0) }, bytes)
            let reference = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            XCTAssertEqual(text, reference)
            if length > 1 {
                let tail = Array(bytes[1...])
                XCTAssertEqual(Base64URL.encode(Data(bytes)[1...]), Base64URL.encode(tail), "a slice of Data")
                XCTAssertEqual(Base64URL.encode(bytes[1...]), Base64URL.encode(tail), "a slice of an array")
                XCTAssertEqual(Base64URL.encode(Data(tail)), Base64URL.encode(tail))
            }
        }
        XCTAssertNil(Base64URL.decode("not base64!"))
    }
}
