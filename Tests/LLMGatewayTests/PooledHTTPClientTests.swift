@testable import LLMGateway
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import X509
import XCTest

/// The provider connections the LLM gateway keeps: reuse, the keep-alive race, deadlines,
/// limits, redirects and TLS, against a real server on loopback.
final class PooledHTTPClientTests: XCTestCase {
    private let client = PooledHTTPClient(group: .singleton)

    func test_keepAlive_carriesManyRequestsOnOneConnection() async throws {
        let server = try await TestHTTPServer.start { _ in .answer(status: .ok, body: "{\"n\":1}") }
        defer { server.stop() }
        for _ in 0..<20 {
            let response = try await call(server.url("/v1/chat"))
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(String(buffer: response.body), "{\"n\":1}")
        }
        XCTAssertEqual(server.connections, 1, "one pooled connection carried every request")
    }

    /// The race every keep-alive client meets: the server closes an idle connection just as a
    /// request goes out on it. The request was never read, so it goes again on a new one.
    func test_aConnectionTheServerClosedWhileIdle_isReplaced_andTheRequestGoesThrough() async throws {
        let server = try await TestHTTPServer.start { _ in .answer(status: .ok, body: "{}", thenClose: true) }
        defer { server.stop() }
        for round in 0..<5 {
            let response = try await call(server.url("/"))
            XCTAssertEqual(response.status, 200, "round \(round)")
        }
        XCTAssertEqual(server.connections, 5, "each closed connection was replaced")
    }

    func test_aServerThatSendsItsHeadAndStalls_isCutOffAtTheDeadline() async throws {
        let server = try await TestHTTPServer.start { _ in .headThenStall }
        defer { server.stop() }
        let started = ContinuousClock.now
        do {
            _ = try await call(server.url("/"), deadline: .milliseconds(300))
            XCTFail("a stalled body must not be waited for")
        } catch {
            XCTAssertEqual(error as? PooledHTTPClient.Failure, .timedOut)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
    }

    func test_aBodyOverTheLimit_endsTheExchange() async throws {
        let server = try await TestHTTPServer.start { _ in .answer(status: .ok, body: String(repeating: "x", count: 4_096)) }
        defer { server.stop() }
        do {
            _ = try await call(server.url("/"), maxBody: 1_024)
            XCTFail("a body over the limit must be refused")
        } catch {
            XCTAssertEqual(error as? PooledHTTPClient.Failure, .tooLarge)
        }
        // The connection that carried it is not reused half-read: the next call still works.
        let response = try await call(server.url("/"), maxBody: 8_192)
        XCTAssertEqual(response.body.readableBytes, 4_096)
    }

    /// A redirect is an answer: following it would carry the provider key to another origin.
    func test_aRedirect_isReturned_notFollowed() async throws {
        let server = try await TestHTTPServer.start { head in
            head.uri == "/elsewhere" ? .answer(status: .ok, body: "followed") : .answer(status: .found, body: "", headers: [("Location", "/elsewhere")])
        }
        defer { server.stop() }
        let response = try await call(server.url("/v1/chat"))
        XCTAssertEqual(response.status, 302)
        XCTAssertEqual(server.paths, ["/v1/chat"], "nothing was sent to the redirect's target")
    }

    func test_anUnreachableProvider_failsAtOnce() async throws {
        let port = try await TestHTTPServer.unusedPort()
        do {
            _ = try await call("http://127.0.0.1:\(port)/v1/chat")
            XCTFail("nothing listens there")
        } catch {
            XCTAssertNotEqual(error as? PooledHTTPClient.Failure, .timedOut)
        }
    }

    func test_theRequestCarriesItsHost_length_andBody() async throws {
        let server = try await TestHTTPServer.start { _ in .answer(status: .ok, body: "{}") }
        defer { server.stop() }
        _ = try await client.execute(url: server.url("/v1/chat?api-version=1"), method: .POST, headers: ["Authorization": "Bearer k"],
                                     body: ByteBuffer(string: "{\"model\":\"m\"}"), deadline: .now() + .seconds(5), maxBody: 1 << 20)
        let seen = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(seen.head.uri, "/v1/chat?api-version=1")
        XCTAssertEqual(seen.head.headers.first(name: "Host"), "127.0.0.1:\(server.port)")
        XCTAssertEqual(seen.head.headers.first(name: "Content-Length"), "13")
        XCTAssertEqual(seen.head.headers.first(name: "Authorization"), "Bearer k")
        XCTAssertEqual(seen.body, "{\"model\":\"m\"}")
    }

    func test_https_trustsOnlyWhatItIsToldTo() async throws {
        let authority = try TestCertificates()
        let server = try await TestHTTPServer.start(tls: authority.serverContext()) { _ in .answer(status: .ok, body: "{\"secure\":true}") }
        defer { server.stop() }
        let url = "https://localhost:\(server.port)/v1/chat"
        let trusting = PooledHTTPClient(group: .singleton, trustRoots: .certificates([authority.caCertificate]))
        let response = try await trusting.execute(url: url, method: .POST, headers: [:], body: ByteBuffer(string: "{}"),
                                                  deadline: .now() + .seconds(10), maxBody: 1 << 20)
        XCTAssertEqual(String(buffer: response.body), "{\"secure\":true}")
        do {
            _ = try await client.execute(url: url, method: .POST, headers: [:], body: ByteBuffer(string: "{}"),
                                         deadline: .now() + .seconds(10), maxBody: 1 << 20)
            XCTFail("a server whose certificate the system does not trust must be refused")
        } catch {
            XCTAssertNotEqual(error as? PooledHTTPClient.Failure, .timedOut)
        }
    }

    private func call(_ url: String, deadline: TimeAmount = .seconds(10), maxBody: Int = 1 << 20) async throws -> PooledHTTPClient.Response {
        try await client.execute(url: url, method: .POST, headers: [:], body: ByteBuffer(string: "{}"), deadline: .now() + deadline, maxBody: maxBody)
    }
}

/// A small HTTP/1.1 server on loopback whose answers a test decides.
final class TestHTTPServer: Sendable {
    enum Behavior: Sendable {
        case answer(status: HTTPResponseStatus, body: String, headers: [(String, String)] = [], thenClose: Bool = false)
        case headThenStall
    }

    struct Seen: Sendable {
        let head: HTTPRequestHead
        let body: String
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<(connections: Int, requests: [Seen])>
    let port: Int

    var connections: Int { state.withLockedValue { $0.connections } }
    var requests: [Seen] { state.withLockedValue { $0.requests } }
    var paths: [String] { requests.map(\.head.uri) }

    private init(channel: any Channel, state: NIOLockedValueBox<(connections: Int, requests: [Seen])>) {
        self.channel = channel
        self.state = state
        self.port = channel.localAddress?.port ?? 0
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    static func start(tls: NIOSSLContext? = nil, _ behave: @escaping @Sendable (HTTPRequestHead) -> Behavior) async throws -> TestHTTPServer {
        let state = NIOLockedValueBox<(connections: Int, requests: [Seen])>((0, []))
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                state.withLockedValue { $0.connections += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(state: state, behave: behave))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestHTTPServer(channel: channel, state: state)
    }

    static func unusedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 1
        try await channel.close()
        return port
    }

    func stop() { channel.close(promise: nil) }

    private final class Responder: ChannelInboundHandler, @unchecked Sendable {
        // safe: one connection's handler, used on its loop only.
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: NIOLockedValueBox<(connections: Int, requests: [Seen])>
        let behave: @Sendable (HTTPRequestHead) -> Behavior
        var head: HTTPRequestHead?
        var body = ""

        init(state: NIOLockedValueBox<(connections: Int, requests: [Seen])>, behave: @escaping @Sendable (HTTPRequestHead) -> Behavior) {
            self.state = state
            self.behave = behave
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let requestHead): head = requestHead; body = ""
            case .body(let part): body += String(buffer: part)
            case .end:
                guard let head else { return }
                state.withLockedValue { $0.requests.append(Seen(head: head, body: body)) }
                switch behave(head) {
                case .answer(let status, let text, let extra, let thenClose):
                    var headers = HTTPHeaders(extra)
                    headers.add(name: "Content-Length", value: String(text.utf8.count))
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                    let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                    if thenClose { done.whenComplete { _ in context.close(promise: nil) } }
                case .headThenStall:
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Length", value: "100")
                    context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                }
            }
        }
    }
}

/// A CA of the test's own and a certificate it issues for `localhost`.
struct TestCertificates {
    let caCertificate: NIOSSLCertificate
    let serverCertificate: NIOSSLCertificate
    let serverKey: NIOSSLPrivateKey

    init() throws {
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("Test provider CA") }
        let now = Date()
        let ca = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey), notValidBefore: now - 300,
                                 notValidAfter: now + 3_600, issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
                                 extensions: try Certificate.Extensions {
                                     Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                                     Critical(KeyUsage(keyCertSign: true))
                                 },
                                 issuerPrivateKey: .init(caKey))
        let key = P256.Signing.PrivateKey()
        let leaf = try Certificate(version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now - 300,
                                   notValidAfter: now + 3_600, issuer: caName, subject: try DistinguishedName { CommonName("localhost") },
                                   signatureAlgorithm: .ecdsaWithSHA256,
                                   extensions: try Certificate.Extensions {
                                       Critical(BasicConstraints.notCertificateAuthority)
                                       SubjectAlternativeNames([.dnsName("localhost")])
                                       try ExtendedKeyUsage([.serverAuth])
                                   },
                                   issuerPrivateKey: .init(caKey))
        caCertificate = try NIOSSLCertificate(bytes: Array(ca.serializeAsPEM().pemString.utf8), format: .pem)
        serverCertificate = try NIOSSLCertificate(bytes: Array(leaf.serializeAsPEM().pemString.utf8), format: .pem)
        serverKey = try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
    }

    func serverContext() throws -> NIOSSLContext {
        try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: [.certificate(serverCertificate)], privateKey: .privateKey(serverKey)))
    }
}
