import Crypto
import Foundation
import Shared

/// A compact JWS (RFC 7515) as the gateways read and write it: `header.claims.signature`, each
/// part base64url. Parsing checks only the shape; `JSONWebKey.verifies` checks the signature.
public struct JSONWebToken: Sendable {
    public let header: JSONValue
    public let claims: JSONValue
    /// The bytes signed: the first two parts and the dot between them, as sent.
    let signingInput: Data
    let signature: Data
    /// Tokens are small; a larger one is refused before anything is decoded.
    public static let maxLength = 16 * 1024

    /// Whether `text` has the shape of a compact JWS whose header names an algorithm (so an API
    /// key such as `sk-…` or `none` in `Authorization: Bearer` is not mistaken for a person's token).
    public static func looksLikeToken(_ text: Substring) -> Bool {
        // Most callers send an API key here, not a token: two dots or nothing to look at.
        guard text.utf8.count <= maxLength, text.utf8.reduce(0, { $0 + ($1 == UInt8(ascii: ".") ? 1 : 0) }) == 2 else { return false }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = Base64URL.decode(String(parts[0])),
              let json = try? JSONParser.parse(header) else { return false }
        return json["alg"] != nil
    }

    public init(parsing text: String) throws(PersonTokenError) {
        guard text.utf8.count <= Self.maxLength else { throw .malformed("longer than \(Self.maxLength) bytes") }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("a compact JWT has three dot-separated parts, this has \(parts.count)") }
        guard let headerBytes = Base64URL.decode(String(parts[0])), let header = try? JSONParser.parse(headerBytes), header.objectValue != nil else {
            throw .malformed("its header is not base64url JSON")
        }
        guard let claimBytes = Base64URL.decode(String(parts[1])), let claims = try? JSONParser.parse(claimBytes), claims.objectValue != nil else {
            throw .malformed("its claims are not base64url JSON")
        }
        guard let signature = Base64URL.decode(String(parts[2])) else { throw .malformed("its signature is not base64url") }
        self.header = header
        self.claims = claims
        self.signature = signature
        self.signingInput = Data("\(parts[0]).\(parts[1])".utf8)
    }

    public var algorithm: String? { header["alg"]?.stringValue }
    public var keyID: String? { header["kid"]?.stringValue }

    /// `header.claims.signature` signed with an ES256 key (P-256, raw r‖s signature).
    public static func signES256(header: JSONValue, claims: JSONValue, key: P256.Signing.PrivateKey) throws -> String {
        try signES256(encodedHeader: Base64URL.encode(header.encoded()), claims: claims, key: key)
    }

    /// The same with the header already encoded (a signer's header does not change between tokens).
    public static func signES256(encodedHeader: String, claims: JSONValue, key: P256.Signing.PrivateKey) throws -> String {
        let input = encodedHeader + "." + Base64URL.encode(claims.encoded())
        let signature = try key.signature(for: Data(input.utf8))
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }
}

/// Why a person's token was refused. Each says what is wrong in words an agent's operator can act on.
public enum PersonTokenError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsigned
    case algorithmRefused(String)
    case untrustedIssuer(String)
    case keyUnknown(issuer: String, kid: String?)
    case keysUnavailable(issuer: String, reason: String)
    case badSignature(issuer: String)
    case expired(Date)
    case notYetValid(Date)
    case wrongAudience(got: [String], expected: String)
    case missingClaim(String)
    case notDelegated(agent: String, person: String)
    case personRequired(service: String)

    /// 401 for a token that does not hold, 403 for a person this agent may not act for.
    public var status: Int {
        switch self {
        case .notDelegated: return 403
        case .keysUnavailable: return 503
        default: return 401
        }
    }

    public var description: String {
        let stamp: (Date) -> String = { ISO8601DateFormatter().string(from: $0) }
        switch self {
        case .malformed(let why): return "the person's token is malformed: \(why)"
        case .unsigned: return "the person's token is unsigned (alg 'none'): refused"
        case .algorithmRefused(let alg): return "the person's token uses alg '\(alg.prefix(32))'; accepted: \(JSONWebKey.algorithms.joined(separator: ", "))"
        case .untrustedIssuer(let issuer): return "the person's token comes from issuer '\(issuer.prefix(200))', which no external JWT signer trusts"
        case .keyUnknown(let issuer, let kid): return "issuer '\(issuer.prefix(200))' has no key \(kid.map { "'\($0.prefix(64))'" } ?? "for this token") that can verify it"
        case .keysUnavailable(let issuer, let reason): return "the keys of issuer '\(issuer.prefix(200))' cannot be fetched: \(reason)"
        case .badSignature(let issuer): return "the person's token does not verify under issuer '\(issuer.prefix(200))''s keys (altered or forged)"
        case .expired(let at): return "the person's token expired at \(stamp(at))"
        case .notYetValid(let at): return "the person's token is not valid before \(stamp(at))"
        case .wrongAudience(let got, let expected): return "the person's token is for audience \(got.map { "'\($0.prefix(100))'" }.joined(separator: ", ")), not '\(expected)'"
        case .missingClaim(let claim): return "the person's token has no '\(claim)' claim"
        case .notDelegated(let agent, let person): return "agent '\(agent)' may not act for '\(person.prefix(200))': no delegation policy allows it"
        case .personRequired(let service): return "'\(service)' serves agents acting for a person only: send the person's token as 'Authorization: Bearer <token>'"
        }
    }
}
