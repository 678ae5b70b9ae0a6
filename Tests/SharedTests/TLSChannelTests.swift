import Logging
import XCTest
@testable import Shared

/// Real sockets on loopback, one event loop: a client and a server channel try to shake hands.
final class TLSChannelTests: XCTestCase {
    private enum Outcome: Equatable { case ready(String), failed(String) }

    /// Each side's outcome, and why the client's connection closed when it closed after it was ready.
    private func handshake(server: TLSCredentials, client: TLSCredentials,
                           awaitClientClose: Bool = false) throws -> (server: Outcome, client: Outcome, clientClosedAfterReady: String?) {
        let loop = try EventLoop.startThread(name: "tls-test")
        defer { loop.stop() }
        let results = Locked<(server: Outcome?, client: Outcome?, clientClosed: String?)>((nil, nil, nil))
        let clientClosed = awaitClientClose ? expectation(description: "the client's connection closed") : nil
        let done = expectation(description: "both sides finished")
        done.expectedFulfillmentCount = 2
        let serverContext = try TLSContext(server: true, credentials: server)
        let clientContext = try TLSContext(server: false, credentials: client)
        loop.execute {
            do {
                let listener = try FramedListener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0), context: serverContext,
                                                  logger: Logger(label: "test")) { channel in
                    channel.onReady = { peer in results.withLock { $0.server = .ready(peer.name) }; done.fulfill() }
                    channel.onClose = { error in
                        if results.current.server == nil { results.withLock { $0.server = .failed("\(error.map { "\($0)" } ?? "closed")") }; done.fulfill() }
                    }
                }
                FramedChannel.connect(loop: loop, to: listener.localAddress, context: clientContext) { result in
                    guard case .success(let channel) = result else { return }
                    channel.onReady = { peer in results.withLock { $0.client = .ready(peer.name) }; done.fulfill(); listener.close() }
                    channel.onClose = { error in
                        if results.current.client == nil {
                            results.withLock { $0.client = .failed("\(error.map { "\($0)" } ?? "closed")") }
                            done.fulfill()
                        } else {
                            results.withLock { $0.clientClosed = "\(error.map { "\($0)" } ?? "closed")" }
                            clientClosed?.fulfill()
                        }
                        listener.close()
                    }
                }
            } catch {
                XCTFail("\(error)")
            }
        }
        wait(for: [done], timeout: 15)
        if let clientClosed {
            if case .ready = results.current.client { wait(for: [clientClosed], timeout: 15) } else { clientClosed.fulfill() }
        }
        let final = results.current
        return (final.server ?? .failed("no result"), final.client ?? .failed("no result"), final.clientClosed)
    }

    func test_sameCA_bothSidesSeeTheVerifiedPeer() throws {
        let pki = try TestPKI()
        let (server, _, _) = try pki.credentials(name: "r1", kind: .router)
        let (client, _, _) = try pki.credentials(name: "alice", kind: .identity)
        let outcome = try handshake(server: server, client: client)
        XCTAssertEqual(outcome.server, .ready("alice"))
        XCTAssertEqual(outcome.client, .ready("r1"))
    }

    func test_clientFromAnotherCA_isRefused() throws {
        let pki = try TestPKI(name: "ours")
        let stranger = try TestPKI(name: "theirs")
        let (server, _, _) = try pki.credentials(name: "r1", kind: .router)
        let (client, _, _) = try stranger.credentials(name: "mallory", kind: .identity)
        var trustingClient = client
        trustingClient.caPEM = pki.caPEM  // it trusts our CA, but its own certificate is from another
        let outcome = try handshake(server: server, client: trustingClient, awaitClientClose: true)
        guard case .failed(let reason) = outcome.server else { return XCTFail("server accepted a foreign certificate") }
        XCTAssertTrue(reason.contains("handshake"), reason)
        // The client finished its side first; the server's refusal reaches it as an explained error.
        if case .ready = outcome.client {
            XCTAssertTrue(outcome.clientClosedAfterReady?.contains("refused the TLS handshake") == true, "\(outcome.clientClosedAfterReady ?? "still open")")
        }
    }

    func test_expiredCertificate_isRefused() throws {
        let pki = try TestPKI()
        let (server, _, _) = try pki.credentials(name: "r1", kind: .router)
        let (client, _, _) = try pki.credentials(name: "old", kind: .identity, now: Date().addingTimeInterval(-7200), validity: 3600)
        let outcome = try handshake(server: server, client: client)
        guard case .failed(let reason) = outcome.server else { return XCTFail("expired certificate accepted") }
        XCTAssertTrue(reason.contains("expired"), reason)
    }
}
