import Crypto
import Foundation
import Shared

/// Signs the statement a gateway attaches to each call it makes upstream, in the shape of an
/// RFC 8693 delegation token: `sub` is the person the agent acts for (or the agent itself when it
/// acts for nobody), `act.sub` the agent, `aud` the upstream, with the circuit and the request it
/// belongs to, valid for `lifetime`. The key is the hosting tunneler's own (never its identity
/// key), published by the controller in its JWKS (`GET /v1/jwks`), so an upstream can authorize
/// per person without trusting the gateway blindly: header `X-Portless-Assertion` on HTTP, `_meta`
/// `io.portless/assertion` on stdio.
public final class AssertionSigner: Sendable {
    public static let headerName = "X-Portless-Assertion"
    public static let metaKey = "io.portless/assertion"
    public static let lifetime: TimeInterval = 60
    nonisolated(unsafe) private let key: P256.Signing.PrivateKey  // safe: immutable after init
    public let kid: String
    /// Who makes the statements: the hosting identity.
    public let issuer: String

    public init(key: P256.Signing.PrivateKey, identity: String) {
        self.key = key
        self.issuer = "portless:" + identity
        let kid = Base64URL.encode(Array(SHA256.hash(data: key.publicKey.x963Representation)).prefix(16))
        self.kid = kid
        self.encodedHeader = Base64URL.encode(JSONValue.object(["alg": .string("ES256"), "typ": .string("JWT"), "kid": .string(kid)]).encoded())
    }

    private let encodedHeader: String

    /// The public half, as the controller publishes it.
    public var publicJWK: JSONValue {
        let point = key.publicKey.x963Representation
        return .object(["kty": .string("EC"), "crv": .string("P-256"), "x": .string(Base64URL.encode(point[1..<33])),
                        "y": .string(Base64URL.encode(point[33..<65])), "kid": .string(kid), "alg": .string("ES256"), "use": .string("sig")])
    }

    public func mint(for caller: Caller, audience: String, service: String, request: String, now: Date = Date()) -> String? {
        let issuedAt = Int(now.timeIntervalSince1970)
        var claims: [String: JSONValue] = [
            "iss": .string(issuer), "aud": .string(audience), "iat": .number(issuedAt), "exp": .number(issuedAt + Int(Self.lifetime)),
            "jti": .string(UUID().uuidString), "portless_service": .string(service), "portless_request": .string(request),
        ]
        if let circuit = caller.circuit { claims["portless_circuit"] = .string(String(circuit)) }
        if let person = caller.person {
            claims["sub"] = .string(person.name)
            claims["act"] = .object(["sub": .string(caller.identity)])
            claims["portless_person_issuer"] = .string(person.issuer)
        } else {
            claims["sub"] = .string(caller.identity)
        }
        return try? JSONWebToken.signES256(encodedHeader: encodedHeader, claims: .object(claims), key: key)
    }
}
