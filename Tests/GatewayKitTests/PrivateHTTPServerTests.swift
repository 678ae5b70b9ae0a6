import Foundation
import GatewayKit
import HTTPTypes
import NIOCore
import Shared
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The gateways' HTTP/1.1 server, driven as the tunneler drives it (a PROXY v2 header, then
/// requests) and as a careless or hostile caller would.
final class PrivateHTTPServerTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "gateway-server-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func serve(maxBody: Int = 1 << 20, _ responder: @escaping PrivateHTTPServer.Responder) async throws -> PrivateHTTPServer {
        let server = PrivateHTTPServer(socketPath: "\(directory)/gateway.sock", maxBody: maxBody, logger: .init(label: "test"))
        try await server.start(responder)
        return server
    }

    private static func echoPath(_ request: GatewayRequest, _ writer: GatewayResponseWriter, _ channel: any Channel) async throws {
        if request.path == "/slow" { try await Task.sleep(for: .milliseconds(100)) }
        try await writer.json(Data("{\"path\":\"\(request.path)\"}".utf8))
    }

    func test_pipelinedRequests_areAnsweredInOrder_onOneConnection() async throws {
        let server = try await serve(Self.echoPath)
        defer { server.stop() }
        let client = try UnixClient(path: server.socketPath)
        try client.send(ProxyProtocol.encode(caller: "agent", circuitID: 7) + Array(
            "GET /slow HTTP/1.1\r\nHost: g\r\n\r\nGET /fast HTTP/1.1\r\nHost: g\r\n\r\n".utf8))
        let answer = try client.read(until: "{\"path\":\"/fast\"}")
        let slow = try XCTUnwrap(answer.range(of: "/slow")), fast = try XCTUnwrap(answer.range(of: "/fast"))
        XCTAssertLessThan(slow.lowerBound, fast.lowerBound, "the slower first request is answered first")
    }

    func test_theCallerNamedByTheProxyHeader_isWhatTheResponderSees() async throws {
        let server = PrivateHTTPServer(socketPath: "\(directory)/gateway.sock", maxBody: 1 << 20, logger: .init(label: "test"))
        let callers = server.callers
        try await server.start { _, writer, channel in
            let caller = callers.caller(of: channel)
            try await writer.json(Data("{\"caller\":\"\(caller?.identity ?? "none")\",\"circuit\":\(caller?.circuit ?? 0)}".utf8))
        }
        defer { server.stop() }
        let client = try UnixClient(path: server.socketPath)
        try client.send(ProxyProtocol.encode(caller: "agent-7", circuitID: 42) + Array("GET / HTTP/1.1\r\nHost: g\r\n\r\n".utf8))
        XCTAssertTrue(try client.read(until: "}").contains("{\"caller\":\"agent-7\",\"circuit\":42}"))
    }

    func test_aBodyOverTheLimit_reachesTheResponderAsTooLarge_andTheConnectionServesOn() async throws {
        let server = try await serve(maxBody: 16) { request, writer, _ in
            do {
                let body = try request.collectBody(upTo: 16)
                try await writer.json(Data("{\"bytes\":\(body.readableBytes)}".utf8))
            } catch is GatewayRequest.BodyTooLarge {
                try await writer.json(Data("{\"error\":\"too large\"}".utf8), status: .contentTooLarge)
            }
        }
        defer { server.stop() }
        let client = try UnixClient(path: server.socketPath)
        let big = String(repeating: "x", count: 64)
        try client.send(ProxyProtocol.encode(caller: "agent", circuitID: 1) + Array(
            "POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 64\r\n\r\n\(big)POST /b HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\n\r\n{}".utf8))
        let answer = try client.read(until: "{\"bytes\":2}")
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 413"), answer)
    }

    func test_garbage_getsA400_andTheServerServesTheNextConnection() async throws {
        let server = try await serve(Self.echoPath)
        defer { server.stop() }
        let hostile = try UnixClient(path: server.socketPath)
        try hostile.send(ProxyProtocol.encode(caller: "agent", circuitID: 1) + Array("\u{01}\u{02} NOT HTTP AT ALL\r\n\r\n".utf8))
        XCTAssertTrue(try hostile.read(until: "\r\n").hasPrefix("HTTP/1.1 400"))
        let client = try UnixClient(path: server.socketPath)
        try client.send(ProxyProtocol.encode(caller: "agent", circuitID: 2) + Array("GET /ok HTTP/1.1\r\nHost: g\r\n\r\n".utf8))
        XCTAssertTrue(try client.read(until: "}").contains("/ok"))
    }

    func test_aResponderThatAnswersNothing_getsA500_notASilentConnection() async throws {
        let server = try await serve { _, _, _ in }
        defer { server.stop() }
        let client = try UnixClient(path: server.socketPath)
        try client.send(ProxyProtocol.encode(caller: "agent", circuitID: 1) + Array("GET / HTTP/1.1\r\nHost: g\r\n\r\n".utf8))
        XCTAssertTrue(try client.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 500"))
    }

    func test_aStream_isChunked_andEndsWhenTheResponderFinishesIt() async throws {
        let server = try await serve { _, writer, _ in
            var fields = HTTPFields()
            fields[.contentType] = "text/event-stream"
            let body = try await writer.writeHead(HTTPResponse(status: .ok, headerFields: fields))
            for index in 0..<3 { try await body.write(ByteBuffer(string: "data: \(index)\n\n")) }
            try await body.finish(nil)
        }
        defer { server.stop() }
        let client = try UnixClient(path: server.socketPath)
        try client.send(ProxyProtocol.encode(caller: "agent", circuitID: 1) + Array("GET / HTTP/1.1\r\nHost: g\r\n\r\n".utf8))
        let answer = try client.read(until: "0\r\n\r\n")
        XCTAssertTrue(answer.lowercased().contains("transfer-encoding: chunked"), answer)
        XCTAssertTrue(answer.contains("data: 0") && answer.contains("data: 2"), answer)
    }

    func test_aRequestWithConnectionClose_isAnswered_thenTheConnectionCloses() async throws {
        let server = try await serve(Self.echoPath)
        defer { server.stop() }
        let client = try UnixClient(path: server.socketPath)
        try client.send(ProxyProtocol.encode(caller: "agent", circuitID: 1) + Array("GET /bye HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n".utf8))
        let answer = try client.readToEnd()
        XCTAssertTrue(answer.contains("/bye"), answer)
    }
}

extension PrivateHTTPServerTests {
    /// A connection that ends with its response closes only once the whole response is on the
    /// socket: a reader slower than the answer still gets all of it.
    func test_aLargeAnswerOnAClosingConnection_arrivesWhole_evenForASlowReader() async throws {
        let size = 4 << 20
        let server = try await serve { _, writer, _ in
            try await writer.json(Data(repeating: UInt8(ascii: "x"), count: size))
        }
        defer { server.stop() }
        let client = try UnixClient(path: server.socketPath)
        try client.send(ProxyProtocol.encode(caller: "agent", circuitID: 1) + Array("GET / HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n".utf8))
        try await Task.sleep(for: .milliseconds(300))  // the socket's buffer fills; the rest waits in the server
        let answer = try client.readToEnd()
        let body = answer.range(of: "\r\n\r\n").map { answer[$0.upperBound...] } ?? ""
        XCTAssertEqual(body.utf8.count, size, "the whole body, then the close")
    }
}

extension PrivateHTTPServerTests {
    /// A field whose value would end the header (CR/LF) or whose name is not a token is left
    /// out: nothing a value holds can add a header of its own or split the response.
    func test_aFieldThatWouldSplitTheResponse_isLeftOut() async throws {
        let server = try await serve { _, writer, _ in
            try await writer.json(Data("{}".utf8), pairs: [("x-route", "ok"), ("x-evil", "a\r\nSet-Cookie: stolen=1"), ("bad name", "v")])
        }
        defer { server.stop() }
        let client = try UnixClient(path: server.socketPath)
        try client.send(ProxyProtocol.encode(caller: "agent", circuitID: 1) + Array("GET / HTTP/1.1\r\nHost: g\r\n\r\n".utf8))
        let answer = try client.read(until: "{}")
        XCTAssertTrue(answer.lowercased().contains("x-route: ok"), answer)
        XCTAssertFalse(answer.lowercased().contains("set-cookie"), answer)
        XCTAssertFalse(answer.contains("bad name"), answer)
    }
}

/// A blocking unix-socket client with a deadline on every read.
private final class UnixClient {
    private let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { throw POSIXError(.EPIPE) }
            offset += written
        }
    }

    /// What arrived until `marker` did (a timeout or the end first is an error).
    func read(until marker: String) throws -> String {
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while !String(decoding: received, as: UTF8.self).contains(marker) {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw POSIXError(.ETIMEDOUT) }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Everything until the server closes (a timeout first is an error).
    func readToEnd() throws -> String {
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count == 0 { return String(decoding: received, as: UTF8.self) }
            guard count > 0 else { throw POSIXError(.ETIMEDOUT) }
            received += buffer[0..<count]
        }
    }
}
