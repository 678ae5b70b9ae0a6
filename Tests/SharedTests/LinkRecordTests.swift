import Logging
import XCTest
@testable import Shared

/// Link records under an attacker on the wire: a relay between two authenticated channels alters,
/// replays or drops what passes, and the receiving end must close the connection, not deliver.
final class LinkRecordTests: XCTestCase {
    private enum Attack { case none, flipLastByte, replay, drop }

    private struct Outcome {
        var delivered: [String] = []
        var serverError: String?
    }

    /// The client sends "first", and 200 ms later "second"; the relay attacks the first chunk the
    /// client sends after both ends are ready.
    private func run(_ attack: Attack) throws -> Outcome {
        let pki = try TestPKI()
        let (serverCredentials, _, _) = try pki.credentials(name: "r1", kind: .router)
        let (clientCredentials, _, _) = try pki.credentials(name: "alice", kind: .identity)
        let serverContext = try TLSContext(server: true, credentials: serverCredentials)
        let clientContext = try TLSContext(server: false, credentials: clientCredentials)
        let loop = try EventLoop.startThread(name: "link-record-test")
        defer { loop.stop() }
        let outcome = Locked(Outcome())
        let finished = expectation(description: "the server closed, or took both frames")
        let state = RelayState()
        loop.execute {
            do {
                let server = try FramedListener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0), context: serverContext,
                                                logger: Logger(label: "test")) { channel in
                    channel.onFrame = { frame in
                        let text = String(decoding: frame.body, as: UTF8.self)
                        outcome.withLock { $0.delivered.append(text) }
                        if text == "second" { finished.fulfill() }
                    }
                    channel.onClose = { error in
                        outcome.withLock { $0.serverError = error.map { "\($0)" } ?? "closed" }
                        finished.fulfill()
                    }
                }
                let relay = try TCPListener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { client in
                    StreamConnection.connect(loop: loop, to: server.localAddress) { result in
                        guard case .success(let upstream) = result else { return client.close() }
                        state.keep += [client, upstream]
                        upstream.onRead = { client.write($0) }
                        upstream.onClose = { _ in client.close() }
                        client.onClose = { _ in upstream.close() }
                        client.onRead = { bytes in
                            guard state.armed && !state.struck else { return upstream.write(bytes) }
                            state.struck = true
                            switch attack {
                            case .none: upstream.write(bytes)
                            case .flipLastByte:
                                var altered = Array(bytes)
                                altered[altered.count - 1] ^= 0x01
                                altered.withUnsafeBytes { upstream.write($0) }
                            case .replay:
                                upstream.write(bytes)
                                upstream.write(bytes)
                            case .drop: break
                            }
                        }
                        upstream.startReading()
                        client.startReading()
                    }
                }
                state.keep += [server, relay]
                FramedChannel.connect(loop: loop, to: relay.localAddress, context: clientContext) { result in
                    guard case .success(let channel) = result else { return }
                    state.keep.append(channel)
                    channel.onReady = { _ in
                        // The server finishes its handshake on our Finished; give it the time to.
                        LoopTimer.once(on: loop, after: 200) {
                            state.armed = true
                            channel.send(.control, body: Array("first".utf8))
                            LoopTimer.once(on: loop, after: 200) { channel.send(.control, body: Array("second".utf8)) }
                        }
                    }
                }
            } catch {
                XCTFail("\(error)")
            }
        }
        wait(for: [finished], timeout: 15)
        let result = outcome.current
        loop.execute { state.keep.removeAll() }
        return result
    }

    /// Touched only on the loop thread.
    private final class RelayState: @unchecked Sendable {
        var keep: [AnyObject] = []
        var armed = false
        var struck = false
    }

    func test_untouchedRecords_areDelivered() throws {
        let outcome = try run(.none)
        XCTAssertEqual(outcome.delivered, ["first", "second"])
        XCTAssertNil(outcome.serverError)
    }

    func test_aByteAlteredOnTheWire_closesTheLink_andNothingIsDelivered() throws {
        let outcome = try run(.flipLastByte)
        XCTAssertEqual(outcome.delivered, [])
        XCTAssertTrue(outcome.serverError?.contains("failed authentication") == true, "\(outcome.serverError ?? "no error")")
    }

    func test_aReplayedRecord_closesTheLink_afterTheOriginalOnly() throws {
        let outcome = try run(.replay)
        XCTAssertEqual(outcome.delivered, ["first"])
        XCTAssertTrue(outcome.serverError?.contains("failed authentication") == true, "\(outcome.serverError ?? "no error")")
    }

    func test_aDroppedRecord_closesTheLink_atTheNextOne() throws {
        let outcome = try run(.drop)
        XCTAssertEqual(outcome.delivered, [])
        XCTAssertTrue(outcome.serverError?.contains("failed authentication") == true, "\(outcome.serverError ?? "no error")")
    }

    func test_bothEnds_replaceTheirKeys_atTheSameRecord() throws {
        let material = Array((0..<36).map { UInt8($0) })[...]
        var sender = try LinkRecordCipher(material: material, sealing: true, rekeyRecords: 3)
        var receiver = try LinkRecordCipher(material: material, sealing: false, rekeyRecords: 3)
        var stale = try LinkRecordCipher(material: material, sealing: false, rekeyRecords: 1000)
        for index in 0..<10 {
            var record = [UInt8](repeating: 0, count: LinkRecordCipher.overhead) + Array("record \(index)".utf8)
            XCTAssertTrue(record.withUnsafeMutableBytes { sender.seal($0, openLength: 0) })
            var copy = record
            XCTAssertTrue(record.withUnsafeMutableBytes { receiver.open($0) }, "record \(index)")
            XCTAssertEqual(String(decoding: record[LinkRecordCipher.overhead...], as: UTF8.self), "record \(index)")
            // A receiver that did not rekey opens nothing from the sender's first new key on.
            if index <= 3 { XCTAssertEqual(copy.withUnsafeMutableBytes { stale.open($0) }, index < 3, "record \(index)") }
        }
    }
}
