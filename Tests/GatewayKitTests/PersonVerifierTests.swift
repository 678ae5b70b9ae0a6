import Crypto
import _CryptoExtras
import Foundation
import Logging
import XCTest
@testable import GatewayKit
@testable import Shared

/// A person's token as the hosting gateway checks it: every algorithm it accepts verifies, and
/// every way a token can be wrong — or be made to look right — is refused with its reason.
final class PersonVerifierTests: XCTestCase {
    private let issuer = "https://idp.test"
    private let p256 = P256.Signing.PrivateKey()

    private func b64(_ value: JSONValue) -> String { Base64URL.encode(value.encoded()) }

    private func jwk(_ key: P256.Signing.PrivateKey, kid: String, alg: String? = "ES256") -> JSONValue {
        let point = key.publicKey.x963Representation
        var members: [String: JSONValue] = ["kty": .string("EC"), "crv": .string("P-256"), "kid": .string(kid),
                                            "x": .string(Base64URL.encode(point[1..<33])), "y": .string(Base64URL.encode(point[33..<65]))]
        if let alg { members["alg"] = .string(alg) }
        return .object(members)
    }

    private func claims(sub: String = "alice", exp: TimeInterval = 300, extra: [String: JSONValue] = [:]) -> JSONValue {
        let now = Int(Date().timeIntervalSince1970)
        var claims: [String: JSONValue] = ["iss": .string(issuer), "sub": .string(sub), "aud": .string("portless"),
                                           "exp": .number(now + Int(exp)), "groups": .array([.string("finance")])]
        for (key, value) in extra { claims[key] = value }
        return .object(claims)
    }

    private func es256(_ claims: JSONValue, key: P256.Signing.PrivateKey? = nil, kid: String = "k1") throws -> String {
        try JSONWebToken.signES256(header: .object(["alg": .string("ES256"), "kid": .string(kid)]), claims: claims, key: key ?? p256)
    }

    private func verifier(keys: [JSONValue], delegations: [DelegationPolicySpec]? = nil) -> PersonVerifier {
        let verifier = PersonVerifier(logger: Logger(label: "test"))
        let signer = ExternalJWTSignerSpec(name: "corp", issuer: issuer, audience: "portless", keys: .object(["keys": .array(keys)]),
                                           attributeClaims: ["groups"])
        verifier.update(signers: [signer], delegations: delegations ?? [DelegationPolicySpec(name: "all", agentRoles: ["#all"], userRoles: ["#all"])])
        return verifier
    }

    private func verify(_ token: String, keys: [JSONValue], delegations: [DelegationPolicySpec]? = nil) async -> Result<Person, PersonTokenError> {
        await verifier(keys: keys, delegations: delegations).verify(token, agent: "agent", agentAttributes: ["agents"])
    }

    func test_es256_verifies_andTheClaimsBecomeThePerson() async throws {
        let result = await verify(try es256(claims()), keys: [jwk(p256, kid: "k1")])
        let person = try result.get()
        XCTAssertEqual(person.name, "alice")
        XCTAssertEqual(person.attributes, ["finance"])
        XCTAssertEqual(person.issuer, issuer)
    }

    func test_rs256_andEdDSA_verify() async throws {
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let publicKey = rsa.publicKey
        let primitives = try publicKey.getKeyPrimitives()
        let (n, e) = (primitives.modulus, primitives.publicExponent)
        let rsaJWK: JSONValue = .object(["kty": .string("RSA"), "kid": .string("r1"), "n": .string(Base64URL.encode(n)), "e": .string(Base64URL.encode(e))])
        let input = b64(.object(["alg": .string("RS256"), "kid": .string("r1")])) + "." + b64(claims())
        let signature = try rsa.signature(for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5)
        let rsaResult = await verify(input + "." + Base64URL.encode(signature.rawRepresentation), keys: [rsaJWK])
        XCTAssertEqual(try rsaResult.get().name, "alice")

        let ed = Curve25519.Signing.PrivateKey()
        let edJWK: JSONValue = .object(["kty": .string("OKP"), "crv": .string("Ed25519"), "kid": .string("e1"),
                                        "x": .string(Base64URL.encode(ed.publicKey.rawRepresentation))])
        let edInput = b64(.object(["alg": .string("EdDSA"), "kid": .string("e1")])) + "." + b64(claims())
        let edResult = await verify(edInput + "." + Base64URL.encode(try ed.signature(for: Data(edInput.utf8))), keys: [edJWK])
        XCTAssertEqual(try edResult.get().name, "alice")
    }

    func test_everyWayATokenCanBeWrong_isRefusedForThatReason() async throws {
        let keys = [jwk(p256, kid: "k1")]
        let valid = try es256(claims())
        let parts = valid.split(separator: ".").map(String.init)
        let unsigned = b64(.object(["alg": .string("none")])) + "." + parts[1] + "."
        let hmac = b64(.object(["alg": .string("HS256"), "kid": .string("k1")])) + "." + parts[1] + "." + parts[2]
        let tampered = parts[0] + "." + b64(claims(sub: "mallory")) + "." + parts[2]
        let cases: [(String, String, (PersonTokenError) -> Bool)] = [
            ("alg none", unsigned, { $0 == .unsigned }),
            ("HMAC with the public key as secret", hmac, { if case .algorithmRefused = $0 { return true }; return false }),
            ("tampered claims", tampered, { if case .badSignature = $0 { return true }; return false }),
            ("another key", try es256(claims(), key: P256.Signing.PrivateKey()), { if case .badSignature = $0 { return true }; return false }),
            ("unknown kid", try es256(claims(), kid: "k9"), { if case .keyUnknown = $0 { return true }; return false }),
            ("expired", try es256(claims(exp: -120)), { if case .expired = $0 { return true }; return false }),
            ("not yet valid", try es256(claims(extra: ["nbf": .number(Int(Date().timeIntervalSince1970) + 600)])), { if case .notYetValid = $0 { return true }; return false }),
            ("no exp", try es256(.object(["iss": .string(issuer), "sub": .string("alice"), "aud": .string("portless")])), { $0 == .missingClaim("exp") }),
            ("wrong audience", try es256(claims(extra: ["aud": .array([.string("a"), .string("b")])])), { if case .wrongAudience = $0 { return true }; return false }),
            ("wrong issuer", try es256(claims(extra: ["iss": .string("https://evil.test")])), { if case .untrustedIssuer = $0 { return true }; return false }),
            ("no user claim", try es256(claims(extra: ["sub": .null])), { $0 == .missingClaim("sub") }),
            ("two parts", parts[0] + "." + parts[1], { if case .malformed = $0 { return true }; return false }),
        ]
        for (name, token, expected) in cases {
            switch await verify(token, keys: keys) {
            case .success(let person): XCTFail("\(name): accepted as \(person)")
            case .failure(let error): XCTAssertTrue(expected(error), "\(name): refused for another reason: \(error)")
            }
        }
    }

    /// A token verified once is remembered, but never past what would refuse it: its expiry, a
    /// delegation withdrawn, or the key that signed it leaving the signer's set.
    func test_aRememberedToken_isStillRefusedWhenItExpiresItsDelegationGoesOrItsKeyIsRotatedOut() async throws {
        let verifier = verifier(keys: [jwk(p256, kid: "k1")])
        let token = try es256(claims(exp: 60))
        let header = "Bearer " + token
        for _ in 0..<2 {
            let person = try await verifier.person(authorization: header, agent: "agent", agentAttributes: ["agents"]).get()
            XCTAssertEqual(person?.name, "alice")
        }

        let later = Date().addingTimeInterval(60 + PersonVerifier.leeway + 1)
        guard case .failure(.expired) = await verifier.person(authorization: header, agent: "agent", agentAttributes: ["agents"], now: later) else {
            return XCTFail("a remembered token outlived its expiry")
        }
        let signer = ExternalJWTSignerSpec(name: "corp", issuer: issuer, audience: "portless", keys: .object(["keys": .array([jwk(p256, kid: "k1")])]),
                                           attributeClaims: ["groups"])
        verifier.update(signers: [signer], delegations: [DelegationPolicySpec(name: "support", agentRoles: ["#agents"], userRoles: ["#support"])])
        guard case .failure(.notDelegated) = await verifier.person(authorization: header, agent: "agent", agentAttributes: ["agents"]) else {
            return XCTFail("a remembered token kept a delegation that was withdrawn")
        }
        let rotated = ExternalJWTSignerSpec(name: "corp", issuer: issuer, audience: "portless",
                                            keys: .object(["keys": .array([jwk(P256.Signing.PrivateKey(), kid: "k1")])]), attributeClaims: ["groups"])
        verifier.update(signers: [rotated], delegations: [DelegationPolicySpec(name: "all", agentRoles: ["#all"], userRoles: ["#all"])])
        guard case .failure(.badSignature) = await verifier.person(authorization: header, agent: "agent", agentAttributes: ["agents"]) else {
            return XCTFail("a remembered token was still accepted after its key was rotated out")
        }
        // Nor does remembering one token let a look-alike through: one changed claim is another token.
        let parts = token.split(separator: ".").map(String.init)
        let forged = parts[0] + "." + b64(claims(sub: "mallory", exp: 60)) + "." + parts[2]
        guard case .failure(.badSignature) = await verifier.verify(forged, agent: "agent", agentAttributes: ["agents"]) else {
            return XCTFail("a forged token was accepted")
        }
    }

    func test_aKeyDeclaredForOneAlgorithm_neverVerifiesAnother() async throws {
        // An EC key that says it is for ES384 must not check an ES256 signature, even a good one.
        let result = await verify(try es256(claims()), keys: [jwk(p256, kid: "k1", alg: "ES384")])
        guard case .failure(.keyUnknown) = result else { return XCTFail("\(result)") }
    }

    func test_aPersonNoDelegationCovers_isRefused_andTheAudienceMayBeAList() async throws {
        let token = try es256(claims(extra: ["aud": .array([.string("other"), .string("portless")])]))
        let onlySupport = [DelegationPolicySpec(name: "support", agentRoles: ["#agents"], userRoles: ["#support"])]
        guard case .failure(.notDelegated(agent: "agent", person: "alice")) = await verify(token, keys: [jwk(p256, kid: "k1")], delegations: onlySupport) else {
            return XCTFail("alice (finance) was let through a delegation for support")
        }
        let finance = [DelegationPolicySpec(name: "finance", agentRoles: ["@agent"], userRoles: ["#finance"])]
        let allowed = await verify(token, keys: [jwk(p256, kid: "k1")], delegations: finance)
        XCTAssertEqual(try allowed.get().name, "alice")
    }

    func test_aBearerThatIsNoToken_namesNobody() async throws {
        let verifier = verifier(keys: [jwk(p256, kid: "k1")])
        for header in [nil, "Bearer sk-placeholder", "Bearer none", "Basic YWJj"] {
            let result = await verifier.person(authorization: header, agent: "agent", agentAttributes: [])
            guard case .success(nil) = result else { return XCTFail("\(header ?? "nil"): \(result)") }
        }
        let result = await verifier.person(authorization: "Bearer " + (try es256(claims())), agent: "agent", agentAttributes: [])
        XCTAssertEqual(try result.get()?.name, "alice")
    }

    func test_assertions_verifyUnderThePublishedKey_andNameBothParties() throws {
        let key = P256.Signing.PrivateKey()
        let signer = AssertionSigner(key: key, identity: "enterprise")
        let person = Person(name: "alice", issuer: issuer, signer: "corp", attributes: [])
        let token = try XCTUnwrap(signer.mint(for: Caller(identity: "agent", circuit: 42, person: person), audience: "crm", service: "crm", request: "r1"))
        let parsed = try JSONWebToken(parsing: token)
        let published = try XCTUnwrap(JSONWebKey(signer.publicJWK))
        XCTAssertTrue(published.verifies(parsed))
        XCTAssertEqual(parsed.claims["sub"]?.stringValue, "alice")
        XCTAssertEqual(parsed.claims["act"]?["sub"]?.stringValue, "agent")
        XCTAssertEqual(parsed.claims["aud"]?.stringValue, "crm")
        XCTAssertEqual(parsed.claims["portless_circuit"]?.stringValue, "42")
        XCTAssertEqual(parsed.keyID, signer.kid)
        XCTAssertNil(signer.publicJWK["d"], "the published key is the public half only")
    }
}
