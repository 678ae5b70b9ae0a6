import COpenSSL
import Foundation

/// One TLS session over memory BIOs: ciphertext in, plaintext out, and back. Knows nothing of
/// sockets (the tlsuv split): the owner feeds what the socket read and sends what it drains.
final class TLSEngine {
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private(set) var handshakeComplete = false

    enum Progress { case complete, needMoreInput }

    init(context: TLSContext) throws {
        guard let ssl = SSL_new(context.context) else {
            throw TLSError.openSSL(operation: "SSL_new", detail: OpenSSLErrors.drain())
        }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.openSSL(operation: "BIO_new", detail: OpenSSLErrors.drain())
        }
        self.ssl = ssl
        readBIO = rbio
        writeBIO = wbio
        SSL_set_bio(ssl, rbio, wbio)  // the SSL now owns both BIOs
        if context.isServer { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
    }

    deinit { SSL_free(ssl) }

    /// Ciphertext fed and not yet consumed by OpenSSL.
    var pendingInput: Int { Int(BIO_ctrl_pending(readBIO)) }

    func feed(_ ciphertext: UnsafeRawBufferPointer) {
        guard let base = ciphertext.baseAddress, ciphertext.count > 0 else { return }
        BIO_write(readBIO, base, Int32(ciphertext.count))
    }

    func continueHandshake() throws -> Progress {
        if handshakeComplete { return .complete }
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            handshakeComplete = true
            return .complete
        }
        let error = SSL_get_error(ssl, rc)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return .needMoreInput }
        let verify = SSL_get_verify_result(ssl)
        if verify != X509_V_OK {
            ERR_clear_error()
            throw TLSError.handshakeFailed("peer certificate rejected: \(String(cString: X509_verify_cert_error_string(verify)))")
        }
        throw TLSError.handshakeFailed(OpenSSLErrors.drain())
    }

    /// Decrypts into `buffer`; returns the byte count, 0 when more ciphertext is needed.
    func readPlaintext(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let n = SSL_read(ssl, base, Int32(min(buffer.count, Int(Int32.max))))
        if n > 0 { return Int(n) }
        let error = SSL_get_error(ssl, n)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return 0
        case SSL_ERROR_ZERO_RETURN: throw TLSError.openSSL(operation: "read", detail: "peer closed the TLS session")
        default: throw TLSError.openSSL(operation: "read", detail: OpenSSLErrors.drain())
        }
    }

    func writePlaintext(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let n = SSL_write(ssl, base, Int32(bytes.count))
        if n != Int32(bytes.count) {
            throw TLSError.openSSL(operation: "write", detail: OpenSSLErrors.drain())
        }
    }

    /// Keying material bound to this session (RFC 8446 §7.5), once the handshake is complete.
    func exportKeyingMaterial(label: String, count: Int) throws -> [UInt8] {
        var material = [UInt8](repeating: 0, count: count)
        let rc = material.withUnsafeMutableBufferPointer { out in
            SSL_export_keying_material(ssl, out.baseAddress, count, label, label.utf8.count, nil, 0, 0)
        }
        guard rc == 1 else { throw TLSError.openSSL(operation: "export keying material", detail: OpenSSLErrors.drain()) }
        return material
    }

    /// Bytes fed after the handshake's last record, which OpenSSL left unread: the first link
    /// records, when the peer sent them right behind its Finished.
    func takeUnreadInput() -> [UInt8] {
        let pending = Int(BIO_ctrl_pending(readBIO))
        guard pending > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: pending)
        let n = bytes.withUnsafeMutableBytes { BIO_read(readBIO, $0.baseAddress, Int32(pending)) }
        return n > 0 ? Array(bytes.prefix(Int(n))) : []
    }

    /// Moves pending ciphertext into `buffer`; returns the byte count (0 when none).
    func drainCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        let n = BIO_read(writeBIO, base, Int32(buffer.count))
        return n > 0 ? Int(n) : 0
    }

    /// The verified peer's subject, after the handshake.
    func peerIdentity() -> PeerIdentity? {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(cert) }
        guard let subject = X509_get_subject_name(cert) else { return nil }
        // Names are at most 64 bytes (Validation.name); a field that fills the buffer is refused, not truncated.
        func text(_ nid: Int32) -> String? {
            var buffer = [CChar](repeating: 0, count: 1024)
            let n = X509_NAME_get_text_by_NID(subject, nid, &buffer, Int32(buffer.count))
            return n > 0 && Int(n) < buffer.count - 1 ? String(nulTerminated: buffer) : nil
        }
        guard let name = text(NID_commonName) else { return nil }
        // The fingerprint is over the certificate's DER, as the controller's registry records it.
        var der: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(cert, &der)
        var fingerprint = ""
        if length > 0, let der {
            fingerprint = Fingerprint.sha256(Data(bytes: der, count: Int(length)))
            CRYPTO_free(der, nil, 0)
        }
        return PeerIdentity(name: name, kind: PeerKind(rawValue: text(NID_organizationalUnitName) ?? "") ?? .unknown,
                            certificateSHA256: fingerprint)
    }
}

/// Who is at the other end, as its CA-verified certificate says.
public struct PeerIdentity: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let kind: PeerKind
    /// SHA-256 of the certificate it presented (empty when the identity did not come from a TLS peer).
    public let certificateSHA256: String
    public init(name: String, kind: PeerKind, certificateSHA256: String = "") {
        self.name = name; self.kind = kind; self.certificateSHA256 = certificateSHA256
    }
    public var description: String { "\(kind.rawValue) '\(name)'" }

    /// Name and kind (the fingerprint is not part of who it is).
    public static func == (a: PeerIdentity, b: PeerIdentity) -> Bool { a.name == b.name && a.kind == b.kind }
}

/// The organizational unit the network CA writes into each certificate it issues.
public enum PeerKind: String, Sendable, Codable {
    case controller
    case router
    case identity
    case unknown
}
