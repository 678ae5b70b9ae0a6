import Foundation
import GatewayKit
import Shared
import XCTest
@testable import MCPGateway

final class SSEDecoderTests: XCTestCase {
    func testEventsSplitAcrossChunks_withCRLF_andMultilineData() throws {
        var decoder = SSEDecoder()
        XCTAssertEqual(try decoder.feed(Array("event: message\r\ndata: {\"a\"".utf8)), [])
        XCTAssertEqual(try decoder.feed(Array(":1}\r\n\r\n: comment\n\ndata:x\ndata: y\n\n".utf8)).map { String(decoding: $0, as: UTF8.self) },
                       ["{\"a\":1}", "x\ny"])
    }

    func testCarriageReturnAtChunkEnd_isNotALineYet() throws {
        var decoder = SSEDecoder()
        XCTAssertEqual(try decoder.feed(Array("data: 1\r".utf8)), [])
        XCTAssertEqual(try decoder.feed(Array("\n\r\n".utf8)).map { String(decoding: $0, as: UTF8.self) }, ["1"])
    }

    func testOversizeEvent_isRefused() {
        var decoder = SSEDecoder()
        let huge = Array(("data: " + String(repeating: "x", count: SSEDecoder.maxEventBytes + 1)).utf8)
        XCTAssertThrowsError(try decoder.feed(huge))
    }
}

final class JSONRPCMessageTests: XCTestCase {
    private func message(_ text: String) throws -> JSONRPC.Message { try JSONRPC.Message(try JSONValue.parse(Data(text.utf8))) }

    func testKinds() throws {
        guard case .request(let id, "tools/call", _) = try message(#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{}}"#) else { return XCTFail() }
        XCTAssertEqual(id, .number(3))
        guard case .notification("notifications/cancelled", _) = try message(#"{"jsonrpc":"2.0","method":"notifications/cancelled"}"#) else { return XCTFail() }
        guard case .response = try message(#"{"jsonrpc":"2.0","id":"a","result":{}}"#) else { return XCTFail() }
        guard case .error(_, let error) = try message(#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}"#) else { return XCTFail() }
        XCTAssertEqual(error.code, -32601)
    }

    func testInvalidMessages_sayWhatIsWrong() {
        for text in [#"{"id":1,"method":"x"}"#, #"{"jsonrpc":"2.0","id":{},"method":"x"}"#, #"{"jsonrpc":"2.0","method":""}"#,
                     #"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#, #"{"jsonrpc":"2.0","id":1}"#, "[]"] {
            XCTAssertThrowsError(try message(text), text) { error in
                XCTAssertEqual((error as? RPCError)?.code, JSONRPC.invalidRequest, text)
            }
        }
    }
}
