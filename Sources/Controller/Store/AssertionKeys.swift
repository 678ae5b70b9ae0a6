import Foundation
import Shared

/// The public keys hosting tunnelers' gateways sign their statements to upstreams with (the
/// person, the agent, the audience, the circuit), served as a JWK set at `GET /v1/jwks`: an MCP
/// server can check who a call is for without trusting the gateway blindly. A key is published by
/// its identity over its authenticated control connection; deleting or revoking the identity
/// withdraws its keys. Each identity keeps its `maxPerIdentity` newest keys (a restarted
/// tunneler may publish a new one while statements signed by the old one are still in flight).
struct AssertionKeys: Sendable {
    let store: Store
    static let maxPerIdentity = 4

    enum KeyError: Error, CustomStringConvertible {
        case invalid(String)
        var description: String { if case .invalid(let why) = self { return why }; return "" }
    }

    /// Why `jwk` is not a key a gateway may publish, or nil: an ES256 verification key and no more.
    static func problem(_ jwk: JSONValue) -> String? {
        guard let object = jwk.objectValue else { return "not a JWK object" }
        guard jwk["kty"]?.stringValue == "EC", jwk["crv"]?.stringValue == "P-256" else { return "only EC P-256 keys (ES256) are published" }
        guard let kid = jwk["kid"]?.stringValue, (1...128).contains(kid.utf8.count) else { return "kid must be 1-128 bytes" }
        for coordinate in ["x", "y"] {
            guard let text = jwk[coordinate]?.stringValue, Base64URL.decode(text)?.count == 32 else { return "'\(coordinate)' must be 32 bytes, base64url" }
        }
        if object["d"] != nil { return "a private key is never published" }
        let allowed: Set<String> = ["kty", "crv", "x", "y", "kid", "alg", "use"]
        if let extra = object.keys.first(where: { !allowed.contains($0) }) { return "unexpected member '\(extra.prefix(64))'" }
        return nil
    }

    func publish(_ jwk: JSONValue, for identity: String) throws {
        if let problem = Self.problem(jwk) { throw KeyError.invalid(problem) }
        guard let kid = jwk["kid"]?.stringValue else { return }
        let public_ = JSONValue.object(["kty": .string("EC"), "crv": .string("P-256"), "x": jwk["x"] ?? .null, "y": jwk["y"] ?? .null,
                                        "kid": .string(kid), "alg": .string("ES256"), "use": .string("sig")])
        try store.write { db in
            if let existing = try db.one(AssertionKeyRow.self, key: kid), existing.identity != identity {
                throw KeyError.invalid("key id '\(kid)' belongs to another identity")
            }
            try db.save(AssertionKeyRow(kid: kid, identity: identity, jwk: public_, publishedAt: Date()))
            let stale = try db.all(AssertionKeyRow.self, where: "identity = ?", [identity], orderBy: "publishedAt DESC").dropFirst(Self.maxPerIdentity)
            for row in stale { try db.delete(AssertionKeyRow.self, key: row.kid) }
        }
    }

    func withdraw(identity: String) throws {
        _ = try store.write { try $0.delete(AssertionKeyRow.self, where: "identity = ?", [identity]) }
    }

    /// The JWK set: every published key of an identity that still exists.
    func keySet() throws -> JSONValue {
        let rows = try store.read { db in
            try db.all(AssertionKeyRow.self, where: "identity IN (SELECT name FROM identity)", orderBy: "kid")
        }
        return .object(["keys": .array(rows.map(\.jwk))])
    }
}
