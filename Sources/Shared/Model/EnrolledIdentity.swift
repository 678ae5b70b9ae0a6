import Crypto
import Foundation
import X509

/// What an enrolled router or tunneler keeps on disk: its key (generated here, never sent), the
/// certificate the CA issued, the CA, the controller's session key and control address.
public struct EnrolledIdentity {
    public let name: String
    public let kind: PeerKind
    public let key: IdentityKey
    public let certificatePEM: String
    public let certificate: Certificate
    public let caPEM: String
    public let authority: Certificate
    public let sessionKey: Curve25519.Signing.PublicKey
    public let controlAddress: SocketAddress

    public struct Metadata: Codable {
        public var name: String
        public var kind: PeerKind
        public var sessionKey: String
        public var controlAddress: String
    }

    public static func paths(_ directory: String) -> (key: String, cert: String, ca: String, meta: String) {
        (directory + "/identity.key", directory + "/identity.pem", directory + "/ca.pem", directory + "/identity.json")
    }

    public init(directory: String) throws {
        let paths = Self.paths(directory)
        let meta = try Files.readJSON(Metadata.self, from: paths.meta)
        name = meta.name
        kind = meta.kind
        key = try IdentityKey(pem: Files.read(paths.key))
        certificatePEM = try Files.read(paths.cert)
        certificate = try Certificate(pemEncoded: certificatePEM)
        caPEM = try Files.read(paths.ca)
        authority = try Certificate(pemEncoded: caPEM)
        guard let keyBytes = Data(base64Encoded: meta.sessionKey) else {
            throw FileError.invalid(path: paths.meta, reason: "sessionKey is not base64")
        }
        sessionKey = try Curve25519.Signing.PublicKey(rawRepresentation: keyBytes)
        controlAddress = try SocketAddress(parsing: meta.controlAddress)
    }

    public var tlsCredentials: TLSCredentials {
        TLSCredentials(certificatePEM: certificatePEM, privateKeyPEM: key.pem, caPEM: caPEM)
    }

    /// Runs the enrollment exchange: makes a key pair, sends a CSR with the token, stores the result.
    public static func enroll(token: String, into directory: String,
                              post: (URL, EnrollmentRequest) throws -> EnrollmentResponse) throws -> EnrolledIdentity {
        let claims = try SignedToken.unverifiedClaims(token, as: EnrollmentClaims.self)
        guard claims.exp > Date() else { throw TokenError.expired(at: claims.exp) }
        guard let url = URL(string: claims.iss + "/v1/enroll") else { throw TokenError.malformed }
        let key = IdentityKey()
        let response = try post(url, EnrollmentRequest(token: token, csr: key.certificateSigningRequestPEM(name: claims.sub)))
        let caDigest = SHA256.hash(data: Data(response.ca.utf8)).map { String(format: "%02x", $0) }.joined()
        guard caDigest == claims.caSHA256 else {
            throw PKIError.untrusted("the CA the controller sent does not match the one named in the token")
        }
        try Files.createDirectory(directory)
        let paths = paths(directory)
        try Files.write(key.pem, to: paths.key, privateFile: true)
        try Files.write(response.certificate, to: paths.cert)
        try Files.write(response.ca, to: paths.ca)
        try Files.writeJSON(Metadata(name: claims.sub, kind: claims.kind, sessionKey: response.sessionKey,
                                     controlAddress: response.controlAddress), to: paths.meta)
        return try EnrolledIdentity(directory: directory)
    }
}
