@preconcurrency import Crypto  // P256 keys are immutable values; swift-crypto does not mark them Sendable on Linux
import Foundation
import X509

/// An enrollee's own key pair. The private key is generated and kept where it is used: it never
/// leaves the enrollee, which sends only a CSR.
public struct IdentityKey: Sendable {
    public let privateKey: P256.Signing.PrivateKey

    public init() { privateKey = P256.Signing.PrivateKey() }

    public init(pem: String) throws { privateKey = try P256.Signing.PrivateKey(pemRepresentation: pem) }

    public var pem: String { privateKey.pemRepresentation }

    public func certificateSigningRequestPEM(name: String) throws -> String {
        let csr = try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName(name) },
            privateKey: .init(privateKey),
            attributes: .init(),
            signatureAlgorithm: .ecdsaWithSHA256)
        return try csr.serializeAsPEM().pemString
    }
}

extension Certificate {
    /// The subject's common name and the kind of peer the CA wrote into its organizational unit.
    public var portlessPeer: PeerIdentity? {
        var name: String?
        var kind = PeerKind.unknown
        for rdn in subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.commonName { name = String(attribute.value) }
                if attribute.type == .RDNAttributeType.organizationalUnitName {
                    kind = String(attribute.value).flatMap(PeerKind.init(rawValue:)) ?? .unknown
                }
            }
        }
        return name.map { PeerIdentity(name: $0, kind: kind) }
    }

    /// Checks that this certificate was issued by `authority`, is valid at `now`, and names the
    /// expected peer.
    public func verify(issuedBy authority: Certificate, expecting expected: PeerIdentity?, now: Date = Date()) throws {
        guard issuer == authority.subject, authority.publicKey.isValidSignature(signature, for: self) else {
            throw PKIError.untrusted("not signed by the network CA")
        }
        guard now <= notValidAfter else { throw PKIError.expired(notAfter: notValidAfter) }
        guard now >= notValidBefore else { throw PKIError.notYetValid(notBefore: notValidBefore) }
        guard let expected else { return }
        guard let actual = portlessPeer, actual == expected else {
            throw PKIError.wrongPeer(expected: expected.description, actual: portlessPeer?.description ?? "nobody")
        }
    }
}
