import Crypto
import Foundation
import SwiftASN1
import X509

/// What an enrolled router or tunneler keeps on disk: its key (generated here, never sent), the
/// certificate the CA issued, the CA, the controller's session key and control address.
public struct EnrolledIdentity {
    public let name: String
    public let kind: PeerKind
    public let key: IdentityKey
    public let certificatePEM: String
    public let certificate: Certificate
    /// `certificate` in DER, as every end-to-end hello carries it.
    public let certificateDER: Data
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
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        certificateDER = Data(serializer.serializedBytes)
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

    /// How enrollment reaches the controller (a test can stand in for it).
    public typealias Transport = @Sendable (_ url: String, _ method: String, _ body: Data?, _ trust: ControllerHTTPS.Trust) throws -> ControllerHTTPS.Response

    public static let https: Transport = { url, method, body, trust in
        try ControllerHTTPS.request(url, method: method, headers: [("Content-Type", "application/json")], body: body, trust: trust, timeout: 15)
    }

    /// Runs the enrollment exchange: makes a key pair, fetches the CA and checks it against the
    /// token, then — over TLS to the certificate that CA issued the controller — sends a CSR
    /// with the token, checks what comes back against the token, and stores it. The private
    /// key never leaves; files are private from the moment they exist.
    public static func enroll(token: String, into directory: String, transport: Transport = https) throws -> EnrolledIdentity {
        let claims = try SignedToken.unverifiedClaims(token, as: EnrollmentClaims.self)
        guard claims.exp > Date() else { throw TokenError.expired(at: claims.exp) }
        guard claims.iss.hasPrefix("https://") else { throw ControllerHTTPSError.notHTTPS(claims.iss) }
        // The CA, fetched before it can be verified; trusted only if it is the one the token names.
        let fetched = try transport(claims.iss + "/v1/ca", "GET", nil, .none)
        let caPEM = String(decoding: fetched.body, as: UTF8.self)
        guard fetched.status == 200, (try? Fingerprint.certificate(pem: caPEM)) == claims.caSHA256 else {
            throw PKIError.untrusted("the CA at \(claims.iss) is not the one named in the token (an impostor, or a token of another network)")
        }
        let key = IdentityKey()
        let request = EnrollmentRequest(token: token, csr: try key.certificateSigningRequestPEM(name: claims.sub))
        let answer = try transport(claims.iss + "/v1/enroll", "POST", try JSONEncoder().encode(request), .controller(caPEM: caPEM))
        guard answer.status == 200 else {
            throw EnrollmentClientError.refused(status: answer.status, message: APIErrorText.message(from: answer.body))
        }
        let response: EnrollmentResponse
        do { response = try JSONDecoder().decode(EnrollmentResponse.self, from: answer.body) } catch {
            throw EnrollmentClientError.refused(status: answer.status, message: "unreadable response")
        }
        guard (try? Fingerprint.certificate(pem: response.ca)) == claims.caSHA256 else {
            throw PKIError.untrusted("the controller answered with a CA other than the one named in the token")
        }
        guard let sessionKey = Data(base64Encoded: response.sessionKey), Fingerprint.sha256(sessionKey) == claims.sessionKeySHA256 else {
            throw PKIError.untrusted("the controller's session key is not the one named in the token")
        }
        let issued = try Certificate(pemEncoded: response.certificate)
        try issued.verify(issuedBy: try Certificate(pemEncoded: caPEM), expecting: PeerIdentity(name: claims.sub, kind: claims.kind))
        guard issued.publicKey == Certificate.PublicKey(key.privateKey.publicKey) else {
            throw PKIError.untrusted("the certificate issued is not for the key this enrollment made")
        }
        try Files.createDirectory(directory)
        let paths = paths(directory)
        try Files.write(key.pem, to: paths.key, privateFile: true)
        try Files.write(response.certificate, to: paths.cert)
        try Files.write(response.ca, to: paths.ca)
        try Files.writeJSON(Metadata(name: claims.sub, kind: claims.kind, sessionKey: response.sessionKey,
                                     controlAddress: response.controlAddress), to: paths.meta)
        // The network's other controllers, to fail over to from the first start (they update it later).
        if let all = response.controlAddresses, all.count > 1 {
            try Files.writeJSON(all.filter { (try? SocketAddress(parsing: $0)) != nil }, to: directory + "/controllers.json")
        }
        return try EnrolledIdentity(directory: directory)
    }
}

public enum EnrollmentClientError: Error, CustomStringConvertible {
    case refused(status: Int, message: String)

    public var description: String {
        switch self {
        case .refused(let status, let message): return "enrollment refused (HTTP \(status)): \(message)"
        }
    }
}

/// Extracts the message of an API error body (Hummingbird's `{"error":{"message":…}}`).
public enum APIErrorText {
    public static func message(from data: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            if let error = object["error"] as? [String: Any], let message = error["message"] as? String { return message }
            if let message = object["error"] as? String { return message }
        }
        return String(decoding: data.prefix(500), as: UTF8.self)
    }
}
