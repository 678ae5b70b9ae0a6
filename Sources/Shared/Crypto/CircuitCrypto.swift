import Crypto
import Foundation
import SwiftASN1
import X509

// End-to-end encryption of one circuit between the two tunnelers. Routers see only what this
// file produces.
//
// The controller signs a CircuitGrant per circuit (circuit, service, dialer, host, expiry).
// Each tunneler verifies it, checks it names itself, and takes the *other* identity it names as
// the only acceptable peer: a router cannot choose who is at the other end.
//
// Handshake: each side sends E2EHello = (ephemeral X25519 public key, its identity certificate,
// ECDSA-P256 signature by the identity key over
//   "portless-e2e-v3" ‖ role ‖ circuit id ‖ SHA-256(grant) ‖ ephemeral).
// Each side verifies the peer certificate against the network CA, that it names exactly the
// identity the grant names, and the signature (so both sides hold the same grant). Then
//   salt = SHA-256(dialer transcript ‖ host transcript), transcript = signed bytes ‖ cert
//   k(dialer→host) ‖ k(host→dialer) ‖ ack(dialer→host) ‖ ack(host→dialer)
//     = HKDF-SHA256(X25519(eph, peer eph), salt, info = "portless e2e keys"), 4 × 32 bytes
// Data frames are AES-256-GCM under the direction's key, nonce = 0⁴ ‖ counter (big-endian),
// counters starting at 0; the frame's sequence field carries the counter; the body is the tag,
// then the ciphertext. A frame resent after a reroute is the same ciphertext under the same nonce
// (never a new plaintext), and the receiver opens each counter once, in order. Acknowledgements carry the receive window's end (bytes) and
// HMAC-SHA256 (truncated to 16 bytes) of (acknowledged counter ‖ window end) under a
// per-direction ack key from the same HKDF: a router can neither forge an ack nor open a window.
// The end of a direction (circuitEnd) carries HMAC-SHA256("end" ‖ counter) under the same key:
// a router cannot end a stream early; an end it forges is refused and the stream is reset.
//
// Why AES-256-GCM and not ChaCha20-Poly1305 (DESIGN §6 named the latter): with AES-NI it moved
// 24 % more bytes through one router in the same run (577 vs 465 MB/s), and every machine we
// target has AES acceleration. The construction around the AEAD is unchanged.

public enum CircuitRole: UInt8, Codable, Sendable {
    case dialer = 1
    case host = 2
}

public struct E2EHello: Sendable {
    public var role: CircuitRole
    public var ephemeralKey: Data
    public var certificateDER: Data
    public var signature: Data

    public init(role: CircuitRole, ephemeralKey: Data, certificateDER: Data, signature: Data) {
        self.role = role; self.ephemeralKey = ephemeralKey; self.certificateDER = certificateDER; self.signature = signature
    }

    static let ephemeralKeySize = 32
    /// A DER ECDSA-P256 signature is at most 72 bytes.
    static let maxSignatureSize = 80

    /// On the wire: role (1 byte) ‖ ephemeral key (32) ‖ signature length (1) ‖ signature ‖
    /// certificate (DER, the rest of the frame). Fixed offsets, so reading one costs no parser.
    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(2 + ephemeralKey.count + signature.count + certificateDER.count)
        out.append(role.rawValue)
        out.append(contentsOf: ephemeralKey)
        out.append(UInt8(truncatingIfNeeded: signature.count))
        out.append(contentsOf: signature)
        out.append(contentsOf: certificateDER)
        return out
    }

    public init(decoding bytes: UnsafeRawBufferPointer) throws {
        let signatureAt = 1 + Self.ephemeralKeySize + 1
        guard bytes.count > signatureAt, let role = CircuitRole(rawValue: bytes[0]) else { throw E2EError.badHello("truncated or unknown role") }
        let signatureSize = Int(bytes[signatureAt - 1])
        guard signatureSize > 0, signatureSize <= Self.maxSignatureSize, bytes.count > signatureAt + signatureSize else {
            throw E2EError.badHello("bad signature length")
        }
        self.role = role
        ephemeralKey = Data(bytes[1..<(1 + Self.ephemeralKeySize)])
        signature = Data(bytes[signatureAt..<(signatureAt + signatureSize)])
        certificateDER = Data(bytes[(signatureAt + signatureSize)...])
    }
}

/// One side's half of the handshake, before the peer's hello has arrived.
public struct E2EHandshake {
    public let role: CircuitRole
    public let circuitID: UInt64
    public let hello: E2EHello
    private let grantDigest: Data
    private let ephemeral: Curve25519.KeyAgreement.PrivateKey

    /// `grant` is the signed circuit grant (verified by the caller); its digest is bound into
    /// both hellos and the key schedule.
    public init(role: CircuitRole, circuitID: UInt64, grant: String, identityKey: IdentityKey, certificate: Certificate) throws {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        try self.init(role: role, circuitID: circuitID, grant: grant, identityKey: identityKey, certificateDER: Data(serializer.serializedBytes))
    }

    /// The same, with our certificate already in DER (serialized once per identity, not per circuit).
    public init(role: CircuitRole, circuitID: UInt64, grant: String, identityKey: IdentityKey, certificateDER: Data) throws {
        self.role = role
        self.circuitID = circuitID
        grantDigest = Data(SHA256.hash(data: Data(grant.utf8)))
        ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let publicKey = ephemeral.publicKey.rawRepresentation
        let signature = try identityKey.privateKey.signature(for: Self.signedBytes(role: role, circuitID: circuitID, grantDigest: grantDigest,
                                                                                    ephemeral: publicKey))
        hello = E2EHello(role: role, ephemeralKey: publicKey, certificateDER: certificateDER, signature: signature.derRepresentation)
    }

    /// Verifies the peer's hello and derives the circuit keys.
    public func complete(with peer: E2EHello, expectedPeer: String, authority: Certificate,
                         now: Date = Date()) throws -> CircuitCipher {
        guard peer.role != role else { throw E2EError.badHello("peer claims our own role") }
        let signingKey = try VerifiedCertificates.shared.signingKey(der: peer.certificateDER, authority: authority,
                                                                  expecting: PeerIdentity(name: expectedPeer, kind: .identity), now: now)
        guard let signature = try? P256.Signing.ECDSASignature(derRepresentation: peer.signature),
              signingKey.isValidSignature(signature, for: Self.signedBytes(role: peer.role, circuitID: circuitID, grantDigest: grantDigest,
                                                                             ephemeral: peer.ephemeralKey)) else {
            throw E2EError.badHello("ephemeral key not signed by '\(expectedPeer)'")
        }
        let peerKey: Curve25519.KeyAgreement.PublicKey
        do { peerKey = try .init(rawRepresentation: peer.ephemeralKey) } catch { throw E2EError.badHello("bad ephemeral key") }
        let shared = try ephemeral.sharedSecretFromKeyAgreement(with: peerKey)

        let (dialerHello, hostHello) = role == .dialer ? (hello, peer) : (peer, hello)
        var transcript = SHA256()
        transcript.update(data: Self.transcript(dialerHello, circuitID: circuitID, grantDigest: grantDigest))
        transcript.update(data: Self.transcript(hostHello, circuitID: circuitID, grantDigest: grantDigest))
        let salt = Data(transcript.finalize())
        // One expansion of 128 bytes, cut into the four keys (one HKDF-Extract instead of four).
        let material = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt, sharedInfo: Data("portless e2e keys".utf8),
                                                      outputByteCount: 4 * 32)
        let keys = material.withUnsafeBytes { bytes in (0..<4).map { SymmetricKey(data: UnsafeRawBufferPointer(rebasing: bytes[($0 * 32)..<($0 * 32 + 32)])) } }
        let (dialerToHost, hostToDialer, ackDialerToHost, ackHostToDialer) = (keys[0], keys[1], keys[2], keys[3])
        return role == .dialer
            ? try CircuitCipher(sendKey: dialerToHost, receiveKey: hostToDialer, ackSendKey: ackDialerToHost, ackReceiveKey: ackHostToDialer)
            : try CircuitCipher(sendKey: hostToDialer, receiveKey: dialerToHost, ackSendKey: ackHostToDialer, ackReceiveKey: ackDialerToHost)
    }

    static func signedBytes(role: CircuitRole, circuitID: UInt64, grantDigest: Data, ephemeral: Data) -> Data {
        var bytes = Data("portless-e2e-v3".utf8)
        bytes.append(role.rawValue)
        withUnsafeBytes(of: circuitID.bigEndian) { bytes.append(contentsOf: $0) }
        bytes.append(grantDigest)
        bytes.append(ephemeral)
        return bytes
    }

    static func transcript(_ hello: E2EHello, circuitID: UInt64, grantDigest: Data) -> Data {
        var bytes = signedBytes(role: hello.role, circuitID: circuitID, grantDigest: grantDigest, ephemeral: hello.ephemeralKey)
        bytes.append(hello.certificateDER)
        return bytes
    }
}

/// The per-circuit AEAD state: one key and one counter per direction.
public struct CircuitCipher {
    public static let tagSize = AESGCMKey.tagSize
    private let sealer: AESGCMKey
    private let opener: AESGCMKey
    /// HMACs already keyed: each tag continues a copy, so the key is not hashed again per tag.
    private let ackSender: HMAC<SHA256>
    private let ackReceiver: HMAC<SHA256>
    public private(set) var sendCounter: UInt64 = 0
    public private(set) var receiveCounter: UInt64 = 0

    init(sendKey: SymmetricKey, receiveKey: SymmetricKey, ackSendKey: SymmetricKey, ackReceiveKey: SymmetricKey) throws {
        sealer = try sendKey.withUnsafeBytes { try AESGCMKey($0, sealing: true) }
        opener = try receiveKey.withUnsafeBytes { try AESGCMKey($0, sealing: false) }
        ackSender = HMAC(key: ackSendKey)
        ackReceiver = HMAC(key: ackReceiveKey)
    }

    public static let ackTagSize = 16

    /// The authenticator of an acknowledgement sent by us: every frame before `counter` arrived,
    /// and the peer may send until its byte count reaches `windowEnd`.
    public func ackTag(for counter: UInt64, windowEnd: UInt64) -> [UInt8] {
        Self.tag(ackSender) { mac in withUnsafeBytes(of: (counter.bigEndian, windowEnd.bigEndian)) { mac.update(data: $0) } }
    }

    /// Whether `tag` is the peer's authenticator for an acknowledgement of (`counter`, `windowEnd`).
    public func isValidAck(_ tag: UnsafeRawBufferPointer, for counter: UInt64, windowEnd: UInt64) -> Bool {
        Self.equal(tag, Self.tag(ackReceiver) { mac in withUnsafeBytes(of: (counter.bigEndian, windowEnd.bigEndian)) { mac.update(data: $0) } })
    }

    private static func endBytes(_ counter: UInt64) -> [UInt8] { Array("end".utf8) + withUnsafeBytes(of: counter.bigEndian) { Array($0) } }

    /// The authenticator of "our direction ends after `counter` frames", sent by us.
    public func endTag(for counter: UInt64) -> [UInt8] {
        Self.tag(ackSender) { $0.update(data: Self.endBytes(counter)) }
    }

    /// Whether `tag` is the peer's authenticator for the end of its direction after `counter`.
    public func isValidEnd(_ tag: UnsafeRawBufferPointer, for counter: UInt64) -> Bool {
        Self.equal(tag, Self.tag(ackReceiver) { $0.update(data: Self.endBytes(counter)) })
    }

    private static func tag(_ keyed: HMAC<SHA256>, _ message: (inout HMAC<SHA256>) -> Void) -> [UInt8] {
        var mac = keyed
        message(&mac)
        return Array(mac.finalize().prefix(ackTagSize))
    }

    private static func equal(_ tag: UnsafeRawBufferPointer, _ expected: [UInt8]) -> Bool {
        guard tag.count == ackTagSize else { return false }
        var difference: UInt8 = 0
        for i in 0..<ackTagSize { difference |= expected[i] ^ tag[i] }
        return difference == 0
    }

    /// Seals `plaintext` into `out` as tag ‖ ciphertext (the tag first: a hop seals the frame
    /// header together with it, see `LinkRecordCipher`); returns the byte count and the counter
    /// to carry in the frame's sequence field.
    public mutating func seal(_ plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws -> (count: Int, counter: UInt64) {
        let total = Self.tagSize + plaintext.count
        guard out.count >= total else { throw E2EError.bufferTooSmall }
        let counter = sendCounter
        guard sealer.seal(salt: 0, counter: counter, input: plaintext, output: UnsafeMutableRawBufferPointer(rebasing: out[Self.tagSize..<total]),
                          tag: UnsafeMutableRawBufferPointer(rebasing: out[0..<Self.tagSize])) else { throw E2EError.sealingFailed }
        sendCounter += 1
        return (total, counter)
    }

    /// Opens a sealed frame body in place; `counter` is the frame's sequence field and must be the
    /// next one. Returns the plaintext, which lies within `sealed`.
    public mutating func open(inPlace sealed: UnsafeMutableRawBufferPointer, counter: UInt64) throws -> UnsafeRawBufferPointer {
        guard counter == receiveCounter else { throw E2EError.outOfOrder(expected: receiveCounter, got: counter) }
        guard sealed.count >= Self.tagSize else { throw E2EError.authenticationFailed }
        let body = UnsafeMutableRawBufferPointer(rebasing: sealed[Self.tagSize...])
        guard opener.open(salt: 0, counter: counter, input: UnsafeRawBufferPointer(body), output: body,
                          tag: UnsafeRawBufferPointer(rebasing: sealed[0..<Self.tagSize])) else { throw E2EError.authenticationFailed }
        receiveCounter += 1
        return UnsafeRawBufferPointer(body)
    }
}

public enum E2EError: Error, CustomStringConvertible {
    case badHello(String)
    case authenticationFailed
    case outOfOrder(expected: UInt64, got: UInt64)
    case bufferTooSmall
    case sealingFailed

    public var description: String {
        switch self {
        case .badHello(let why): return "end-to-end handshake refused: \(why)"
        case .authenticationFailed: return "end-to-end decryption failed: data was altered in transit"
        case .outOfOrder(let expected, let got): return "end-to-end frame \(got) arrived where \(expected) was expected"
        case .bufferTooSmall: return "sealed frame does not fit its buffer"
        case .sealingFailed: return "end-to-end sealing failed (OpenSSL refused it)"
        }
    }
}

/// Identity certificates already verified against the network CA, by the SHA-256 of their DER:
/// a tunneler sees the same few peers over and over, and parsing and checking a certificate is
/// most of a circuit's handshake. An entry holds only what the check established (whose it is,
/// its key, when it is valid) and is used only for those exact bytes under that same CA; the
/// validity window is checked on every use. Bounded: it starts over past `limit` entries.
public final class VerifiedCertificates: Sendable {
    public static let shared = VerifiedCertificates()
    static let limit = 4096

    private struct Entry {
        let authority: Certificate
        let peer: PeerIdentity
        let key: P256.Signing.PublicKey
        let notBefore: Date
        let notAfter: Date
    }
    private let entries = Locked<[Data: Entry]>([:])

    /// The certificate's signing key, once it is known to be issued by `authority` to `expected` and valid `now`.
    public func signingKey(der: Data, authority: Certificate, expecting expected: PeerIdentity, now: Date = Date()) throws -> P256.Signing.PublicKey {
        let key = Data(SHA256.hash(data: der))
        if let entry = entries.withLock({ $0[key] }), entry.authority == authority {
            guard entry.peer == expected else { throw PKIError.wrongPeer(expected: expected.description, actual: entry.peer.description) }
            guard now <= entry.notAfter else { throw PKIError.expired(notAfter: entry.notAfter) }
            guard now >= entry.notBefore else { throw PKIError.notYetValid(notBefore: entry.notBefore) }
            return entry.key
        }
        let certificate: Certificate
        do { certificate = try Certificate(derEncoded: Array(der)) } catch { throw E2EError.badHello("unreadable certificate") }
        try certificate.verify(issuedBy: authority, expecting: expected, now: now)
        guard let signingKey = P256.Signing.PublicKey(certificate.publicKey) else { throw E2EError.badHello("the certificate's key is not P-256") }
        entries.withLock { entries in
            if entries.count >= Self.limit { entries.removeAll() }
            entries[key] = Entry(authority: authority, peer: expected, key: signingKey, notBefore: certificate.notValidBefore,
                                 notAfter: certificate.notValidAfter)
        }
        return signingKey
    }
}
