import Crypto
import _CryptoExtras
import Foundation
import Shared

/// A public key from an identity provider's JWK set (RFC 7517/7518), and the signature check of
/// each algorithm the gateways accept: RS256/384/512, ES256/384 and EdDSA (Ed25519). There is no
/// `none` and no HMAC: a gateway holds no secret shared with an identity provider.
public struct JSONWebKey: Sendable {
    public static let algorithms = ["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"]

    enum Material: @unchecked Sendable {  // safe: immutable public keys
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    public let kid: String?
    /// The algorithm the key declares, if it does: a token must then use exactly it.
    public let alg: String?
    let material: Material

    /// Reads one JWK; nil for a key of a kind no accepted algorithm uses (skipped, not an error).
    public init?(_ jwk: JSONValue) {
        kid = jwk["kid"]?.stringValue
        alg = jwk["alg"]?.stringValue
        if let use = jwk["use"]?.stringValue, use != "sig" { return nil }
        func bytes(_ name: String) -> Data? { jwk[name]?.stringValue.flatMap(Base64URL.decode) }
        switch jwk["kty"]?.stringValue {
        case "RSA":
            guard let n = bytes("n"), let e = bytes("e"), let key = try? _RSA.Signing.PublicKey(n: n, e: e) else { return nil }
            material = .rsa(key)
        case "EC":
            guard let x = bytes("x"), let y = bytes("y") else { return nil }
            let point = Data([0x04]) + x + y
            switch jwk["crv"]?.stringValue {
            case "P-256":
                guard x.count == 32, y.count == 32, let key = try? P256.Signing.PublicKey(x963Representation: point) else { return nil }
                material = .p256(key)
            case "P-384":
                guard x.count == 48, y.count == 48, let key = try? P384.Signing.PublicKey(x963Representation: point) else { return nil }
                material = .p384(key)
            default: return nil
            }
        case "OKP":
            guard jwk["crv"]?.stringValue == "Ed25519", let x = bytes("x"), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x) else { return nil }
            material = .ed25519(key)
        default:
            return nil
        }
    }

    /// The keys of a JWK set (`{"keys": [...]}`), skipping any it cannot use.
    public static func set(_ jwks: JSONValue) -> [JSONWebKey] {
        (jwks["keys"]?.arrayValue ?? []).compactMap(JSONWebKey.init)
    }

    /// Whether this key can check a signature of algorithm `alg` at all.
    func accepts(_ algorithm: String) -> Bool {
        if let alg, alg != algorithm { return false }
        switch (material, algorithm) {
        case (.rsa, "RS256"), (.rsa, "RS384"), (.rsa, "RS512"), (.p256, "ES256"), (.p384, "ES384"), (.ed25519, "EdDSA"): return true
        default: return false
        }
    }

    /// Whether `token`'s signature verifies under this key with the token's algorithm.
    func verifies(_ token: JSONWebToken) -> Bool {
        guard let algorithm = token.algorithm, accepts(algorithm) else { return false }
        let input = token.signingInput, signature = token.signature
        switch material {
        case .rsa(let key):
            let rsa = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm {
            case "RS256": return key.isValidSignature(rsa, for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
            case "RS384": return key.isValidSignature(rsa, for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)
            default: return key.isValidSignature(rsa, for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
            }
        case .p256(let key):
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: input)
        case .p384(let key):
            guard let ecdsa = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: input)
        case .ed25519(let key):
            return key.isValidSignature(signature, for: input)
        }
    }
}
