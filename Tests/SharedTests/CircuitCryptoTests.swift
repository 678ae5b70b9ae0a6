import Crypto
import Foundation
import XCTest
@testable import Shared

final class CircuitCryptoTests: XCTestCase {
    private let signer = Curve25519.Signing.PrivateKey()

    private func grant(circuit: UInt64 = 7, dialer: String = "alice", host: String = "host", service: String = "sql",
                       expires: Date = Date().addingTimeInterval(60)) throws -> String {
        try SignedToken.sign(CircuitGrant(circuit: circuit, service: service, dialer: dialer, host: host, exp: expires),
                             type: CircuitGrant.tokenType, key: signer)
    }

    func test_handshake_derivesMatchingKeys_andDetectsTampering() throws {
        let pki = try TestPKI()
        let (_, aliceKey, aliceCert) = try pki.credentials(name: "alice", kind: .identity)
        let (_, hostKey, hostCert) = try pki.credentials(name: "host", kind: .identity)
        let token = try grant()
        let dialer = try E2EHandshake(role: .dialer, circuitID: 7, grant: token, identityKey: aliceKey, certificate: aliceCert)
        let host = try E2EHandshake(role: .host, circuitID: 7, grant: token, identityKey: hostKey, certificate: hostCert)
        var dialerCipher = try dialer.complete(with: host.hello, expectedPeer: "host", authority: pki.authority.certificate)
        var hostCipher = try host.complete(with: dialer.hello, expectedPeer: "alice", authority: pki.authority.certificate)

        var sealed = [UInt8](repeating: 0, count: 64)
        let message = Array("select * from tickets".utf8)
        let (count, counter) = try message.withUnsafeBytes { plain in try sealed.withUnsafeMutableBytes { try dialerCipher.seal(plain, into: $0) } }
        XCTAssertNotEqual(Array(sealed[0..<message.count]), message, "ciphertext equals plaintext")
        let opened = try sealed[0..<count].withUnsafeMutableBytes { Data(try hostCipher.open(inPlace: $0, counter: counter)) }
        XCTAssertEqual(Array(opened), message)

        let (count2, counter2) = try message.withUnsafeBytes { plain in try sealed.withUnsafeMutableBytes { try dialerCipher.seal(plain, into: $0) } }
        var tamperedTag = Array(sealed[0..<count2]), tamperedText = tamperedTag
        tamperedTag[3] ^= 0x01
        tamperedText[CircuitCipher.tagSize + 3] ^= 0x01
        XCTAssertThrowsError(try tamperedTag.withUnsafeMutableBytes { try hostCipher.open(inPlace: $0, counter: counter2) })
        XCTAssertThrowsError(try tamperedText.withUnsafeMutableBytes { try hostCipher.open(inPlace: $0, counter: counter2) })
        let intact = try sealed[0..<count2].withUnsafeMutableBytes { Data(try hostCipher.open(inPlace: $0, counter: counter2)) }
        XCTAssertEqual(Array(intact), message, "a refused frame does not advance the counter")
    }

    func test_handshake_refusesAPeerOtherThanTheOneTheGrantNames() throws {
        let pki = try TestPKI()
        let (_, aliceKey, aliceCert) = try pki.credentials(name: "alice", kind: .identity)
        let (_, malloryKey, malloryCert) = try pki.credentials(name: "mallory", kind: .identity)
        let token = try grant(circuit: 1)
        let dialer = try E2EHandshake(role: .dialer, circuitID: 1, grant: token, identityKey: aliceKey, certificate: aliceCert)
        // Mallory holds the same grant (a router could hand it over) and a valid certificate of this network.
        let impostor = try E2EHandshake(role: .host, circuitID: 1, grant: token, identityKey: malloryKey, certificate: malloryCert)
        XCTAssertThrowsError(try dialer.complete(with: impostor.hello, expectedPeer: "host", authority: pki.authority.certificate)) {
            XCTAssertTrue("\($0)".contains("mallory") || "\($0)".contains("expected"), "\($0)")
        }
    }

    func test_handshake_failsWhenTheTwoSidesHoldDifferentGrants() throws {
        let pki = try TestPKI()
        let (_, aliceKey, aliceCert) = try pki.credentials(name: "alice", kind: .identity)
        let (_, hostKey, hostCert) = try pki.credentials(name: "host", kind: .identity)
        let dialer = try E2EHandshake(role: .dialer, circuitID: 7, grant: try grant(), identityKey: aliceKey, certificate: aliceCert)
        let host = try E2EHandshake(role: .host, circuitID: 7, grant: try grant(service: "other"), identityKey: hostKey, certificate: hostCert)
        XCTAssertThrowsError(try dialer.complete(with: host.hello, expectedPeer: "host", authority: pki.authority.certificate),
                             "the grant's digest is in what each side signs")
    }

    /// The hello travels in a fixed binary layout; what a router sends instead is refused before
    /// any of it is trusted, and a hello that survives the trip still completes the handshake.
    func test_hello_survivesItsWireForm_andGarbageIsRefused() throws {
        let pki = try TestPKI()
        let (_, aliceKey, aliceCert) = try pki.credentials(name: "alice", kind: .identity)
        let (_, hostKey, hostCert) = try pki.credentials(name: "host", kind: .identity)
        let token = try grant()
        let dialer = try E2EHandshake(role: .dialer, circuitID: 7, grant: token, identityKey: aliceKey, certificate: aliceCert)
        let host = try E2EHandshake(role: .host, circuitID: 7, grant: token, identityKey: hostKey, certificate: hostCert)
        let wire = host.hello.encoded()
        let received = try wire.withUnsafeBytes { try E2EHello(decoding: $0) }
        XCTAssertNoThrow(try dialer.complete(with: received, expectedPeer: "host", authority: pki.authority.certificate))

        var badRole = wire; badRole[0] = 9
        var longSignature = wire; longSignature[33] = 200
        var zeroSignature = wire; zeroSignature[33] = 0
        for garbage in [[], [UInt8](wire.prefix(34)), [UInt8](wire.prefix(34 + Int(wire[33]))), badRole, longSignature, zeroSignature] {
            XCTAssertThrowsError(try garbage.withUnsafeBytes { try E2EHello(decoding: $0) }, "\(garbage.count) bytes")
        }
        // A certificate cut short, or a flipped bit in the signature, parses but does not verify.
        var flipped = wire; flipped[40] ^= 1
        for tampered in [[UInt8](wire.dropLast(10)), flipped] {
            let hello = try tampered.withUnsafeBytes { try E2EHello(decoding: $0) }
            XCTAssertThrowsError(try dialer.complete(with: hello, expectedPeer: "host", authority: pki.authority.certificate))
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let random = (0..<Int.random(in: 0..<120, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if let hello = try? random.withUnsafeBytes({ try E2EHello(decoding: $0) }) {
                XCTAssertThrowsError(try dialer.complete(with: hello, expectedPeer: "host", authority: pki.authority.certificate))
            }
        }
    }

    /// The controller writes a grant's claims by hand and the tunnelers read them by hand: both
    /// agree with the `Codable` form, so either side may change alone.
    func test_grant_handWrittenClaims_matchTheirCodableForm() throws {
        let expires = Date(timeIntervalSince1970: 1_900_000_000.25)
        let original = CircuitGrant(circuit: UInt64.max - 3, service: "sql \"é\"", dialer: "alice", host: "host\n", exp: expires)
        let handWritten = try original.signed(with: signer)
        XCTAssertEqual(try SignedToken.verify(handWritten, type: CircuitGrant.tokenType, as: CircuitGrant.self, key: signer.publicKey), original)
        let viaCodable = try SignedToken.sign(original, type: CircuitGrant.tokenType, key: signer)
        XCTAssertEqual(try CircuitGrant.verified(viaCodable, circuit: original.circuit, key: signer.publicKey, now: expires.addingTimeInterval(-1)),
                       original)
        XCTAssertThrowsError(try CircuitGrant.verified(handWritten, circuit: original.circuit, key: signer.publicKey, now: expires)) {
            XCTAssertEqual($0 as? TokenError, .expired(at: expires))
        }
        // Claims that are not a grant's, signed with the right key, are refused as malformed.
        let partial = try SignedToken.sign(payload: Array(#"{"circuit":7,"service":"sql"}"#.utf8), type: CircuitGrant.tokenType, key: signer)
        XCTAssertThrowsError(try CircuitGrant.verified(partial, circuit: 7, key: signer.publicKey)) { XCTAssertEqual($0 as? TokenError, .malformed) }
    }

    func test_grant_isRefusedWhenForgedExpiredOrForAnotherCircuit() throws {
        XCTAssertNoThrow(try CircuitGrant.verified(try grant(circuit: 9), circuit: 9, key: signer.publicKey))
        XCTAssertThrowsError(try CircuitGrant.verified(try grant(circuit: 9), circuit: 10, key: signer.publicKey)) {
            XCTAssertTrue("\($0)".contains("for circuit 9, not 10"), "\($0)")
        }
        XCTAssertThrowsError(try CircuitGrant.verified(try grant(expires: Date().addingTimeInterval(-1)), circuit: 7, key: signer.publicKey))
        let router = Curve25519.Signing.PrivateKey()
        let forged = try SignedToken.sign(CircuitGrant(circuit: 7, service: "sql", dialer: "alice", host: "mallory", exp: Date().addingTimeInterval(60)),
                                          type: CircuitGrant.tokenType, key: router)
        XCTAssertThrowsError(try CircuitGrant.verified(forged, circuit: 7, key: signer.publicKey)) { XCTAssertEqual($0 as? TokenError, .badSignature) }
        // A session token is not a grant, even though the same key signs both.
        let session = try SignedToken.sign(SessionClaims(sid: "s", identity: "alice", service: "sql", type: .dial, routers: [], iat: Date(),
                                                         exp: Date().addingTimeInterval(60)), type: SessionClaims.tokenType, key: signer)
        XCTAssertThrowsError(try CircuitGrant.verified(session, circuit: 7, key: signer.publicKey))
    }

    func test_endOfStream_isAuthenticated_aForgedEndIsNot() throws {
        let pki = try TestPKI()
        let (_, aliceKey, aliceCert) = try pki.credentials(name: "alice", kind: .identity)
        let (_, hostKey, hostCert) = try pki.credentials(name: "host", kind: .identity)
        let token = try grant()
        let dialer = try E2EHandshake(role: .dialer, circuitID: 7, grant: token, identityKey: aliceKey, certificate: aliceCert)
        let host = try E2EHandshake(role: .host, circuitID: 7, grant: token, identityKey: hostKey, certificate: hostCert)
        let dialerCipher = try dialer.complete(with: host.hello, expectedPeer: "host", authority: pki.authority.certificate)
        let hostCipher = try host.complete(with: dialer.hello, expectedPeer: "alice", authority: pki.authority.certificate)
        let tag = hostCipher.endTag(for: 42)
        XCTAssertTrue(tag.withUnsafeBytes { dialerCipher.isValidEnd($0, for: 42) })
        XCTAssertFalse(tag.withUnsafeBytes { dialerCipher.isValidEnd($0, for: 41) }, "an end moved to an earlier frame (truncation)")
        XCTAssertFalse([UInt8](repeating: 0, count: 16).withUnsafeBytes { dialerCipher.isValidEnd($0, for: 42) })
        XCTAssertFalse(hostCipher.ackTag(for: 42, windowEnd: 0).withUnsafeBytes { dialerCipher.isValidEnd($0, for: 42) }, "an acknowledgement is not an end")
        XCTAssertFalse(dialerCipher.endTag(for: 42).withUnsafeBytes { dialerCipher.isValidEnd($0, for: 42) }, "each direction has its own key")
    }

    /// The tags are HMAC-SHA256 of the documented bytes, truncated: what any peer computes,
    /// however this one arrives at it.
    func test_ackAndEndTags_areTheHMACsOfTheirBytes() throws {
        let send = SymmetricKey(size: .bits256), receive = SymmetricKey(size: .bits256)
        let cipher = try CircuitCipher(sendKey: SymmetricKey(size: .bits256), receiveKey: SymmetricKey(size: .bits256), ackSendKey: send, ackReceiveKey: receive)
        func be(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
        for (counter, window) in [(UInt64(0), UInt64(0)), (1, 65_536), (UInt64.max, 0x0102_0304_0506_0708)] {
            let ack = Array(HMAC<SHA256>.authenticationCode(for: be(counter) + be(window), using: send).prefix(16))
            XCTAssertEqual(cipher.ackTag(for: counter, windowEnd: window), ack)
            let peers = Array(HMAC<SHA256>.authenticationCode(for: be(counter) + be(window), using: receive).prefix(16))
            XCTAssertTrue(peers.withUnsafeBytes { cipher.isValidAck($0, for: counter, windowEnd: window) })
            XCTAssertFalse(peers.withUnsafeBytes { cipher.isValidAck($0, for: counter &+ 1, windowEnd: window) })
            XCTAssertEqual(cipher.endTag(for: counter), Array(HMAC<SHA256>.authenticationCode(for: Array("end".utf8) + be(counter), using: send).prefix(16)))
            let end = Array(HMAC<SHA256>.authenticationCode(for: Array("end".utf8) + be(counter), using: receive).prefix(16))
            XCTAssertTrue(end.withUnsafeBytes { cipher.isValidEnd($0, for: counter) })
        }
    }
}
