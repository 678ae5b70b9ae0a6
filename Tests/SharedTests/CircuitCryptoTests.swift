import XCTest
@testable import Shared

final class CircuitCryptoTests: XCTestCase {
    func test_handshake_derivesMatchingKeys_andDetectsTampering() throws {
        let pki = try TestPKI()
        let (_, aliceKey, aliceCert) = try pki.credentials(name: "alice", kind: .identity)
        let (_, hostKey, hostCert) = try pki.credentials(name: "host", kind: .identity)
        let dialer = try E2EHandshake(role: .dialer, circuitID: 7, identityKey: aliceKey, certificate: aliceCert)
        let host = try E2EHandshake(role: .host, circuitID: 7, identityKey: hostKey, certificate: hostCert)
        var dialerCipher = try dialer.complete(with: host.hello, expectedPeer: "host", authority: pki.authority.certificate)
        var hostCipher = try host.complete(with: dialer.hello, expectedPeer: "alice", authority: pki.authority.certificate)

        var sealed = [UInt8](repeating: 0, count: 64)
        let message = Array("select * from tickets".utf8)
        let (count, counter) = try message.withUnsafeBytes { plain in try sealed.withUnsafeMutableBytes { try dialerCipher.seal(plain, into: $0) } }
        XCTAssertNotEqual(Array(sealed[0..<message.count]), message, "ciphertext equals plaintext")
        let opened = try sealed[0..<count].withUnsafeBytes { try hostCipher.open($0, counter: counter) }
        XCTAssertEqual(Array(opened), message)

        let (count2, counter2) = try message.withUnsafeBytes { plain in try sealed.withUnsafeMutableBytes { try dialerCipher.seal(plain, into: $0) } }
        sealed[3] ^= 0x01
        XCTAssertThrowsError(try sealed[0..<count2].withUnsafeBytes { try hostCipher.open($0, counter: counter2) })
    }

    func test_handshake_refusesAPeerOtherThanTheNamedOne() throws {
        let pki = try TestPKI()
        let (_, aliceKey, aliceCert) = try pki.credentials(name: "alice", kind: .identity)
        let (_, malloryKey, malloryCert) = try pki.credentials(name: "mallory", kind: .identity)
        let dialer = try E2EHandshake(role: .dialer, circuitID: 1, identityKey: aliceKey, certificate: aliceCert)
        let impostor = try E2EHandshake(role: .host, circuitID: 1, identityKey: malloryKey, certificate: malloryCert)
        XCTAssertThrowsError(try dialer.complete(with: impostor.hello, expectedPeer: "host", authority: pki.authority.certificate))
    }
}
