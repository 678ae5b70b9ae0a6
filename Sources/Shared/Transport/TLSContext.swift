import COpenSSL
import Foundation

/// PEM-encoded material for one side of a mutually authenticated TLS connection.
public struct TLSCredentials: Sendable {
    public var certificatePEM: String
    public var privateKeyPEM: String
    public var caPEM: String

    public init(certificatePEM: String, privateKeyPEM: String, caPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.caPEM = caPEM
    }
}

/// An OpenSSL `SSL_CTX` configured for TLS 1.3 with mutual authentication against the network CA.
/// Immutable after init, which is what makes sharing it across loops safe.
public final class TLSContext: @unchecked Sendable {
    // safe: OpenSSL allows concurrent SSL_new on a context that is no longer being configured.
    let context: OpaquePointer
    public let isServer: Bool

    public init(server: Bool, credentials: TLSCredentials) throws {
        guard let method = server ? TLS_server_method() : TLS_client_method(), let ctx = SSL_CTX_new(method) else {
            throw TLSError.openSSL(operation: "SSL_CTX_new", detail: OpenSSLErrors.drain())
        }
        context = ctx
        isServer = server
        _ = portless_SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384")
        _ = portless_SSL_CTX_set_mode(ctx, Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        // TLS only authenticates and keys the connection; link records follow its handshake at
        // once (LinkRecordCipher), so nothing may come after it: no session tickets.
        SSL_CTX_set_num_tickets(ctx, 0)

        let certificates = try OpenSSLPEM.certificates(credentials.certificatePEM)
        guard let leaf = certificates.first else { throw TLSError.badCredentials("no certificate in PEM") }
        defer { certificates.forEach { X509_free($0) } }
        guard SSL_CTX_use_certificate(ctx, leaf) == 1 else {
            throw TLSError.badCredentials("certificate rejected: \(OpenSSLErrors.drain())")
        }
        let key = try OpenSSLPEM.privateKey(credentials.privateKeyPEM)
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_PrivateKey(ctx, key) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            throw TLSError.badCredentials("private key does not match the certificate: \(OpenSSLErrors.drain())")
        }
        let store = SSL_CTX_get_cert_store(ctx)
        let authorities = try OpenSSLPEM.certificates(credentials.caPEM)
        guard !authorities.isEmpty else { throw TLSError.badCredentials("no CA certificate in PEM") }
        for ca in authorities {
            X509_STORE_add_cert(store, ca)
            X509_free(ca)
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
    }

    /// A client context with no certificate of its own, for HTTPS to the controller's API: the
    /// server is verified against `caPEM` (the pinned network CA), or not at all when nil — only
    /// for fetching that CA, whose digest the caller then checks against one it already trusts.
    public init(clientTrusting caPEM: String?) throws {
        guard let method = TLS_client_method(), let ctx = SSL_CTX_new(method) else {
            throw TLSError.openSSL(operation: "SSL_CTX_new", detail: OpenSSLErrors.drain())
        }
        context = ctx
        isServer = false
        _ = portless_SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)
        guard let caPEM else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
            return
        }
        let authorities = try OpenSSLPEM.certificates(caPEM)
        guard !authorities.isEmpty else { throw TLSError.badCredentials("no CA certificate in PEM") }
        let store = SSL_CTX_get_cert_store(ctx)
        for ca in authorities {
            X509_STORE_add_cert(store, ca)
            X509_free(ca)
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
    }

    deinit { SSL_CTX_free(context) }
}

enum OpenSSLPEM {
    static func certificates(_ pem: String) throws -> [OpaquePointer] {
        try withBIO(pem) { bio in
            var result: [OpaquePointer] = []
            while let cert = PEM_read_bio_X509(bio, nil, nil, nil) { result.append(cert) }
            ERR_clear_error()
            return result
        }
    }

    static func privateKey(_ pem: String) throws -> OpaquePointer {
        try withBIO(pem) { bio in
            guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
                throw TLSError.badCredentials("unreadable private key: \(OpenSSLErrors.drain())")
            }
            return key
        }
    }

    private static func withBIO<T>(_ pem: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        var bytes = Array(pem.utf8)
        return try bytes.withUnsafeMutableBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else {
                throw TLSError.openSSL(operation: "BIO_new_mem_buf", detail: OpenSSLErrors.drain())
            }
            defer { BIO_free(bio) }
            return try body(bio)
        }
    }
}

/// The single mapping point from OpenSSL's error queue to text.
enum OpenSSLErrors {
    static func drain() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(nulTerminated: buffer))
        }
        return messages.isEmpty ? "no detail from OpenSSL" : messages.joined(separator: "; ")
    }
}

public enum TLSError: Error, CustomStringConvertible {
    case openSSL(operation: String, detail: String)
    case badCredentials(String)
    case handshakeFailed(String)
    case handshakeTimeout
    case peerNotAuthorized(String)

    public var description: String {
        switch self {
        case .openSSL(let op, let detail): return "TLS \(op) failed: \(detail)"
        case .badCredentials(let why): return "TLS credentials are unusable: \(why)"
        case .handshakeFailed(let why): return "TLS handshake failed: \(why)"
        case .handshakeTimeout: return "TLS handshake did not finish in time"
        case .peerNotAuthorized(let why): return "peer not authorized: \(why)"
        }
    }
}
