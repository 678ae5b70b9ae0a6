import Crypto
import Foundation

/// A compact JWT signed with the controller's Ed25519 key (`alg: EdDSA`). Used for enrollment
/// tokens and service sessions; the `typ` header keeps one from being accepted as the other.
public enum SignedToken {
    public static func sign<Claims: Encodable>(_ claims: Claims, type: String,
                                               key: Curve25519.Signing.PrivateKey) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        return try sign(payload: encoder.encode(claims), type: type, key: key)
    }

    /// Signs claims already in JSON (a token minted per circuit writes its own).
    public static func sign<Payload: DataProtocol>(payload: Payload, type: String, key: Curve25519.Signing.PrivateKey) throws -> String {
        let signingInput = Base64URL.encode(header(type: type)) + "." + Base64URL.encode(payload)
        let signature = try key.signature(for: Data(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// Verifies the signature and type and decodes the claims. Expiry is the caller's check,
    /// because only the caller knows what "now" and what grace apply.
    public static func verify<Claims: Decodable>(_ token: String, type: String, as: Claims.Type,
                                                 key: Curve25519.Signing.PublicKey) throws -> Claims {
        let payload = try verifiedPayload(token, type: type, key: key)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do { return try decoder.decode(Claims.self, from: payload) } catch { throw TokenError.malformed }
    }

    /// The claims' JSON, once the signature and type hold.
    public static func verifiedPayload(_ token: String, type: String, key: Curve25519.Signing.PublicKey) throws -> Data {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerData = Base64URL.decode(String(parts[0])),
              let payload = Base64URL.decode(String(parts[1])),
              let signature = Base64URL.decode(String(parts[2])) else {
            throw TokenError.malformed
        }
        guard key.isValidSignature(signature, for: Data((parts[0] + "." + parts[1]).utf8)) else {
            throw TokenError.badSignature
        }
        guard case .object(let header)? = try? JSONParser.parse(headerData), header["alg"]?.stringValue == "EdDSA" else {
            throw TokenError.malformed
        }
        guard header["typ"]?.stringValue == type else {
            throw TokenError.wrongType(expected: type, actual: header["typ"]?.stringValue ?? "none")
        }
        return payload
    }

    /// `{"alg":"EdDSA","typ":…}`: the keys in order, as a sorted-keys encoder writes them.
    private static func header(type: String) -> [UInt8] {
        var out = Array(#"{"alg":"EdDSA","typ":"#.utf8)
        JSONValue.write(string: type, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Reads the claims without verifying them: only for showing a token's contents to its holder.
    public static func unverifiedClaims<Claims: Decodable>(_ token: String, as: Claims.Type) throws -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(String(parts[1])) else { throw TokenError.malformed }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do { return try decoder.decode(Claims.self, from: payload) } catch { throw TokenError.malformed }
    }
}

public enum TokenError: Error, CustomStringConvertible, Equatable {
    case malformed
    case badSignature
    case wrongType(expected: String, actual: String)
    case expired(at: Date)
    case alreadyUsed
    case unknown
    case revoked

    public var description: String {
        switch self {
        case .malformed: return "token is malformed (not a Portless JWT)"
        case .badSignature: return "token signature is invalid: it was not issued by this network's controller"
        case .wrongType(let expected, let actual): return "token is a '\(actual)' token, expected '\(expected)'"
        case .expired(let date): return "token expired at \(ISO8601DateFormatter().string(from: date)); ask an admin for a new one"
        case .alreadyUsed: return "token was already used; enrollment tokens are single-use, ask an admin for a new one"
        case .unknown: return "token is not known to the controller (deleted identity or router?)"
        case .revoked: return "token was revoked"
        }
    }
}

public enum Base64URL {
    public static func encode<D: DataProtocol>(_ data: D) -> String {
        if let encoded = data.withContiguousStorageIfAvailable({ encode(UnsafeRawBufferPointer($0)) }) { return encoded }
        return Array(data).withUnsafeBytes { encode($0) }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Unpadded base64url (RFC 4648 §5), three bytes to four characters.
    public static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        let count = (bytes.count * 4 + 2) / 3
        return String(unsafeUninitializedCapacity: count) { out in
            alphabet.withUnsafeBufferPointer { alphabet in
                var written = 0, index = 0
                while index + 3 <= bytes.count {
                    let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
                    out[written] = alphabet[Int(group >> 18)]
                    out[written + 1] = alphabet[Int(group >> 12 & 63)]
                    out[written + 2] = alphabet[Int(group >> 6 & 63)]
                    out[written + 3] = alphabet[Int(group & 63)]
                    written += 4
                    index += 3
                }
                let rest = bytes.count - index
                if rest > 0 {
                    let group = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
                    out[written] = alphabet[Int(group >> 18)]
                    out[written + 1] = alphabet[Int(group >> 12 & 63)]
                    written += 2
                    if rest == 2 {
                        out[written] = alphabet[Int(group >> 6 & 63)]
                        written += 1
                    }
                }
                return written
            }
        }
    }

    public static func decode(_ text: String) -> Data? {
        var base64 = [UInt8]()
        base64.reserveCapacity(text.utf8.count + 3)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "-"): base64.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): base64.append(UInt8(ascii: "/"))
            default: base64.append(byte)
            }
        }
        while base64.count % 4 != 0 { base64.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(base64))
    }
}
