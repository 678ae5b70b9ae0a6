import Foundation
import X509
@testable import Shared

/// A throwaway network CA and credentials for tests.
struct TestPKI {
    let authority: CertificateAuthority
    let caPEM: String

    init(name: String = "test") throws {
        authority = try CertificateAuthority.create(networkName: name)
        caPEM = try authority.certificatePEM
    }

    func credentials(name: String, kind: PeerKind, now: Date = Date(), validity: TimeInterval = 3600) throws -> (TLSCredentials, IdentityKey, Certificate) {
        let key = IdentityKey()
        let certificate = try authority.issue(publicKey: .init(key.privateKey.publicKey), name: name, kind: kind, now: now, validity: validity,
                                              notBefore: now.addingTimeInterval(-validity - 60))
        let pem = try certificate.serializeAsPEM().pemString
        return (TLSCredentials(certificatePEM: pem, privateKeyPEM: key.pem, caPEM: caPEM), key, certificate)
    }
}
