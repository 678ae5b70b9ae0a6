import Crypto
import Foundation
import Shared

/// One-time enrollment tokens: issued for an identity or router, redeemed once for a certificate.
struct Enrollment: Sendable {
    static let tokenLifetime: TimeInterval = 24 * 3600

    let store: Store
    let secrets: ControllerSecrets
    let config: ControllerConfig
    let audit: AuditLog
    let certificates: CertificateRegistry

    /// What an enrollment did: the answer for the enrollee, and the certificates it replaced.
    struct Redeemed {
        let response: EnrollmentResponse
        let subject: String
        let kind: PeerKind
        let replaced: [String]
    }

    func issueToken(for subject: String, kind: PeerKind, lifetime: TimeInterval = tokenLifetime) throws -> String {
        let claims = EnrollmentClaims(jti: UUID().uuidString, sub: subject, kind: kind, iss: config.apiURL,
                                      ctrl: config.controlAddress.description, caSHA256: secrets.caSHA256,
                                      sessionKeySHA256: secrets.sessionKeySHA256, exp: Date().addingTimeInterval(lifetime))
        try store.write { db in
            try db.insert(EnrollmentRow(jti: claims.jti, subject: subject, kind: kind, expiresAt: claims.exp, usedAt: nil))
        }
        return try SignedToken.sign(claims, type: EnrollmentClaims.tokenType, key: secrets.signingKey)
    }

    /// Verifies the token and the CSR, marks the token used (atomically: a token races itself at
    /// most once), and issues a certificate for the CSR's key. A malformed CSR is refused before
    /// the token is touched, so a bad request cannot burn it.
    func redeem(_ request: EnrollmentRequest, now: Date = Date()) throws -> Redeemed {
        let claims = try SignedToken.verify(request.token, type: EnrollmentClaims.tokenType, as: EnrollmentClaims.self,
                                            key: secrets.signingKey.publicKey)
        guard claims.exp > now else { throw TokenError.expired(at: claims.exp) }
        let publicKey = try CertificateAuthority.verifiedKey(ofCSR: request.csr)
        try store.write { db in
            guard let row = try db.one(EnrollmentRow.self, key: claims.jti), row.subject == claims.sub, row.kind == claims.kind else {
                throw TokenError.unknown
            }
            guard row.usedAt == nil else { throw TokenError.alreadyUsed }
            guard try db.execute("UPDATE enrollment SET usedAt = ? WHERE jti = ? AND usedAt IS NULL", [now, claims.jti]) == 1 else {
                throw TokenError.alreadyUsed
            }
            let enrolled: Int
            switch claims.kind {
            case .identity: enrolled = try db.execute("UPDATE identity SET enrolled = ? WHERE name = ?", [true, claims.sub])
            case .router: enrolled = try db.execute("UPDATE router SET enrolled = ? WHERE name = ?", [true, claims.sub])
            case .controller, .unknown: throw TokenError.unknown
            }
            guard enrolled == 1 else { throw TokenError.unknown }
        }
        let certificate = try secrets.authority.issue(publicKey: publicKey, name: claims.sub, kind: claims.kind, now: now)
        let replaced = try store.write { db in try certificates.issued(certificate, to: claims.sub, kind: claims.kind, db: db) }
        audit.record(.enrollment, identity: claims.sub, detail: "\(claims.kind.rawValue) enrolled" + (replaced.isEmpty ? "" : "; \(replaced.count) earlier certificate(s) revoked"))
        let response = EnrollmentResponse(certificate: try certificate.serializeAsPEM().pemString, ca: secrets.caPEM,
                                          sessionKey: secrets.signingKey.publicKey.rawRepresentation.base64EncodedString(),
                                          controlAddress: config.controlAddress.description,
                                          controlAddresses: (try? store.read { try $0.all(ControllerRow.self, orderBy: "name") })?.map(\.controlAddress))
        return Redeemed(response: response, subject: claims.sub, kind: claims.kind, replaced: replaced)
    }
}
