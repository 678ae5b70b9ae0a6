import Crypto
import XCTest
@testable import EdgeRouter
@testable import Shared

final class SessionVerifierTests: XCTestCase {
    private let controllerKey = Curve25519.Signing.PrivateKey()

    private func token(identity: String = "alice", type: SessionType = .dial, routers: [String] = ["r1"],
                       expires: Date = Date().addingTimeInterval(600), key: Curve25519.Signing.PrivateKey? = nil) throws -> (String, String) {
        let sid = UUID().uuidString
        let claims = SessionClaims(sid: sid, identity: identity, service: "sql", type: type, routers: routers, iat: Date(), exp: expires)
        return (try SignedToken.sign(claims, type: SessionClaims.tokenType, key: key ?? controllerKey), sid)
    }

    private var verifier: SessionVerifier { SessionVerifier(routerName: "r1", key: controllerKey.publicKey) }

    func test_validSession_isAccepted() throws {
        let (jwt, sid) = try token()
        XCTAssertEqual(try verifier.verify(jwt, presentedBy: "alice", type: .dial).sid, sid)
    }

    func test_forgedSignature_isRefused() throws {
        let (jwt, _) = try token(key: Curve25519.Signing.PrivateKey())
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "alice", type: .dial)) { XCTAssertEqual($0 as? TokenError, .badSignature) }
    }

    func test_expiredSession_isRefused() throws {
        let (jwt, _) = try token(expires: Date().addingTimeInterval(-1))
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "alice", type: .dial)) {
            guard case .expired = $0 as? TokenError else { return XCTFail("\($0)") }
        }
    }

    func test_revokedSession_isRefused() throws {
        let (jwt, sid) = try token()
        var verifier = self.verifier
        verifier.revoke([sid])
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "alice", type: .dial)) { XCTAssertEqual($0 as? TokenError, .revoked) }
    }

    func test_sessionOfAnotherIdentity_orType_orRouter_isRefused() throws {
        let (jwt, _) = try token()
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "mallory", type: .dial))
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "alice", type: .bind))
        let (elsewhere, _) = try token(routers: ["r2"])
        XCTAssertThrowsError(try verifier.verify(elsewhere, presentedBy: "alice", type: .dial))
    }

    /// A session verified once is remembered without its signature being checked again, but
    /// everything else still is: expiry, revocation, holder, type.
    func test_aSessionSeenBefore_isStillCheckedForExpiryRevocationHolderAndType() throws {
        let (jwt, sid) = try token(expires: Date().addingTimeInterval(60))
        var verifier = self.verifier
        XCTAssertEqual(try verifier.verify(jwt, presentedBy: "alice", type: .dial).sid, sid)
        XCTAssertEqual(try verifier.verify(jwt, presentedBy: "alice", type: .dial).sid, sid)
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "mallory", type: .dial))
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "alice", type: .bind))
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "alice", type: .dial, now: Date().addingTimeInterval(61))) {
            guard case .expired = $0 as? TokenError else { return XCTFail("\($0)") }
        }
        verifier.revoke([sid])
        XCTAssertThrowsError(try verifier.verify(jwt, presentedBy: "alice", type: .dial)) { XCTAssertEqual($0 as? TokenError, .revoked) }
        // A forged token is never remembered: it fails every time.
        let (forged, _) = try token(key: Curve25519.Signing.PrivateKey())
        for _ in 0..<2 {
            XCTAssertThrowsError(try verifier.verify(forged, presentedBy: "alice", type: .dial)) { XCTAssertEqual($0 as? TokenError, .badSignature) }
        }
    }

    func test_rememberedSessions_areBounded() throws {
        let tokens = VerifiedTokens()
        let now = Date()
        let claims = SessionClaims(sid: "s", identity: "alice", service: "sql", type: .dial, routers: ["r1"], iat: now, exp: now.addingTimeInterval(60))
        for index in 0..<(VerifiedTokens.limit + 10) { tokens.keep("token-\(index)", claims, now: now) }
        XCTAssertLessThanOrEqual(tokens.claims.count, VerifiedTokens.limit)
    }
}
