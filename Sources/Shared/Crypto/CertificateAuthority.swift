@preconcurrency import Crypto  // P256 keys are immutable values; swift-crypto does not mark them Sendable on Linux
import Foundation
import SwiftASN1
import X509

/// The network's certificate authority (P-256). It signs every router, identity and controller
/// certificate; the kind of peer is written into the subject's organizational unit and the name
/// into its common name, which is what TLS peers and E2E handshakes check.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    private let privateKey: P256.Signing.PrivateKey

    public static let validity: TimeInterval = 10 * 365 * 24 * 3600
    public static let leafValidity: TimeInterval = 365 * 24 * 3600

    public init(certificatePEM: String, privateKeyPEM: String) throws {
        certificate = try Certificate(pemEncoded: certificatePEM)
        privateKey = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
    }

    /// Creates a new self-signed CA for the network named `networkName`.
    public static func create(networkName: String, now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName("\(networkName) CA")
            OrganizationalUnitName("ca")
            OrganizationName("Portless")
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(validity),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
        return try CertificateAuthority(certificatePEM: certificate.serializeAsPEM().pemString,
                                        privateKeyPEM: key.pemRepresentation)
    }

    public var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString }
    }

    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// Issues a certificate for `name` of `kind` over the public key in `csrPEM`, after checking
    /// the CSR's self-signature. The subject the CSR asks for is ignored: the CA decides it.
    public func issue(csrPEM: String, name: String, kind: PeerKind, now: Date = Date(),
                      validity: TimeInterval = CertificateAuthority.leafValidity) throws -> Certificate {
        try issue(publicKey: Self.verifiedKey(ofCSR: csrPEM), name: name, kind: kind, now: now, validity: validity)
    }

    /// The public key of a well-formed, self-signed CSR; anything else is a `malformedCSR`.
    public static func verifiedKey(ofCSR csrPEM: String) throws -> Certificate.PublicKey {
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(pemEncoded: csrPEM) } catch {
            throw PKIError.malformedCSR("\(error)")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw PKIError.malformedCSR("its signature does not match its public key")
        }
        return csr.publicKey
    }

    public func issue(publicKey: Certificate.PublicKey, name: String, kind: PeerKind, now: Date = Date(),
                      validity: TimeInterval = CertificateAuthority.leafValidity,
                      notBefore: Date? = nil) throws -> Certificate {
        let subject = try DistinguishedName {
            CommonName(name)
            OrganizationalUnitName(kind.rawValue)
            OrganizationName("Portless")
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: notBefore ?? now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(validity),
            issuer: certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyAgreement: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
            },
            issuerPrivateKey: .init(privateKey))
    }
}

public enum PKIError: Error, CustomStringConvertible, Equatable {
    case malformedCSR(String)
    case untrusted(String)
    case expired(notAfter: Date)
    case notYetValid(notBefore: Date)
    case wrongPeer(expected: String, actual: String)

    public var description: String {
        switch self {
        case .malformedCSR(let why): return "certificate signing request rejected: \(why)"
        case .untrusted(let why): return "certificate not trusted: \(why)"
        case .expired(let date): return "certificate expired at \(date)"
        case .notYetValid(let date): return "certificate not valid before \(date)"
        case .wrongPeer(let expected, let actual): return "expected peer '\(expected)' but the certificate names '\(actual)'"
        }
    }
}
