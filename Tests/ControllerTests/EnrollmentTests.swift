import Crypto
import X509
import XCTest
@testable import Controller
@testable import Shared

final class EnrollmentTests: XCTestCase {
    private var directory: String!
    private var enrollment: Enrollment!
    private var certificates: CertificateRegistry!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "portless-enroll-\(UUID().uuidString)"
        let files = ControllerFiles(directory: directory)
        let config = ControllerConfig(network: "t", apiAddress: SocketAddress(host: "127.0.0.1", port: 1),
                                      controlAddress: SocketAddress(host: "127.0.0.1", port: 2))
        _ = try ControllerSecrets.initialize(files: files, config: config)
        let store = try Store(path: files.database)
        try store.write { try $0.insert(IdentityRow(name: "alice", roles: [], enrolled: false, createdAt: Date())) }
        let secrets = try ControllerSecrets(files: files)
        certificates = try CertificateRegistry(store: store)
        enrollment = Enrollment(store: store, secrets: secrets, config: config, audit: AuditLog(store: store, key: secrets.auditKey),
                                certificates: certificates)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func request(_ token: String) throws -> EnrollmentRequest {
        EnrollmentRequest(token: token, csr: try IdentityKey().certificateSigningRequestPEM(name: "alice"))
    }

    func test_validToken_yieldsCertificateForTheNamedIdentity() throws {
        let response = try enrollment.redeem(try request(try enrollment.issueToken(for: "alice", kind: .identity))).response
        let certificate = try Certificate(pemEncoded: response.certificate)
        XCTAssertEqual(certificate.portlessPeer, PeerIdentity(name: "alice", kind: .identity))
    }

    func test_usedToken_isRefused() throws {
        let token = try enrollment.issueToken(for: "alice", kind: .identity)
        _ = try enrollment.redeem(try request(token))
        XCTAssertThrowsError(try enrollment.redeem(try request(token))) { XCTAssertEqual($0 as? TokenError, .alreadyUsed) }
    }

    func test_expiredToken_isRefused() throws {
        let token = try enrollment.issueToken(for: "alice", kind: .identity, lifetime: -1)
        XCTAssertThrowsError(try enrollment.redeem(try request(token))) {
            guard case .expired = $0 as? TokenError else { return XCTFail("\($0)") }
        }
    }

    func test_forgedToken_isRefused() throws {
        let claims = EnrollmentClaims(jti: UUID().uuidString, sub: "alice", kind: .identity, iss: "https://x", ctrl: "x:1",
                                      caSHA256: "", sessionKeySHA256: "", exp: Date().addingTimeInterval(600))
        let forged = try SignedToken.sign(claims, type: EnrollmentClaims.tokenType, key: Curve25519.Signing.PrivateKey())
        XCTAssertThrowsError(try enrollment.redeem(try request(forged))) { XCTAssertEqual($0 as? TokenError, .badSignature) }
    }

    func test_sessionToken_isNotAnEnrollmentToken() throws {
        let claims = SessionClaims(sid: "s", identity: "alice", service: "x", type: .dial, routers: [], iat: Date(), exp: Date().addingTimeInterval(60))
        let wrongKind = try SignedToken.sign(claims, type: SessionClaims.tokenType, key: enrollment.secrets.signingKey)
        XCTAssertThrowsError(try enrollment.redeem(try request(wrongKind))) {
            guard case .wrongType = $0 as? TokenError else { return XCTFail("\($0)") }
        }
    }

    func test_aMalformedCSR_isRefusedWithoutBurningTheToken() throws {
        let token = try enrollment.issueToken(for: "alice", kind: .identity)
        XCTAssertThrowsError(try enrollment.redeem(EnrollmentRequest(token: token, csr: "-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n-----END CERTIFICATE REQUEST-----"))) {
            guard case .malformedCSR = $0 as? PKIError else { return XCTFail("\($0)") }
        }
        XCTAssertNoThrow(try enrollment.redeem(try request(token)), "the token still works with a good CSR")
    }

    func test_enrollingAgain_revokesTheCertificateHeldBefore() throws {
        let first = try enrollment.redeem(try request(try enrollment.issueToken(for: "alice", kind: .identity)))
        let old = try Fingerprint.certificate(pem: first.response.certificate)
        XCTAssertFalse(certificates.isRevoked(old))
        let second = try enrollment.redeem(try request(try enrollment.issueToken(for: "alice", kind: .identity)))
        XCTAssertEqual(second.replaced, [old])
        XCTAssertTrue(certificates.isRevoked(old), "the old certificate is useless once the identity enrolled again")
        XCTAssertFalse(certificates.isRevoked(try Fingerprint.certificate(pem: second.response.certificate)))
        XCTAssertTrue(certificates.revoked.contains(old))
    }

    func test_enrollmentToken_namesTheCAAndTheSessionKey_byFingerprint() throws {
        let claims = try SignedToken.unverifiedClaims(try enrollment.issueToken(for: "alice", kind: .identity), as: EnrollmentClaims.self)
        XCTAssertEqual(claims.caSHA256, try Fingerprint.certificate(pem: enrollment.secrets.caPEM))
        XCTAssertEqual(claims.sessionKeySHA256, Fingerprint.sha256(enrollment.secrets.signingKey.publicKey.rawRepresentation))
        XCTAssertTrue(claims.iss.hasPrefix("https://"), "enrollment is over TLS only: \(claims.iss)")
    }
}
