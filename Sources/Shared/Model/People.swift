import Foundation

/// A person an agent acts for, as their organisation's identity provider vouched for them in a
/// token the hosting gateway verified: who (the signer's user claim), whose word it is (issuer
/// and signer), and the role attributes the signer's claims map to.
public struct Person: Codable, Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var issuer: String
    public var signer: String
    public var attributes: [String]

    public init(name: String, issuer: String, signer: String, attributes: [String]) {
        self.name = name; self.issuer = issuer; self.signer = signer; self.attributes = attributes
    }

    public var description: String { "person '\(name)'" }
}

/// An external JWT signer (OpenZiti's ext-jwt-signer): an identity provider whose tokens name the
/// people agents act for. People need no certificate; their tokens are verified where they are
/// used — by the gateway that hosts the service — against this configuration.
///
/// Keys come from `jwksURL` (fetched by the gateway, cached, refreshed on an unknown key id) or
/// from `keys`, a JWK set given inline. `userClaim` (default `sub`) names the person;
/// `attributeClaims` (e.g. `groups`) hold strings or lists of strings that become the person's
/// role attributes, matched by `#attribute` in delegation and gateway policies.
public struct ExternalJWTSignerSpec: Codable, Sendable, Equatable {
    public var name: String
    public var issuer: String
    public var audience: String
    public var jwksURL: String?
    public var keys: JSONValue?
    public var userClaim: String?
    public var attributeClaims: [String]?

    public init(name: String, issuer: String, audience: String, jwksURL: String? = nil, keys: JSONValue? = nil,
                userClaim: String? = nil, attributeClaims: [String]? = nil) {
        self.name = name; self.issuer = issuer; self.audience = audience; self.jwksURL = jwksURL; self.keys = keys
        self.userClaim = userClaim; self.attributeClaims = attributeClaims
    }

    public var effectiveUserClaim: String { userClaim ?? "sub" }

    /// Why this signer cannot be used, or nil.
    public func problem() -> String? {
        if issuer.isEmpty || issuer.utf8.count > 512 { return "issuer must be 1-512 bytes (the tokens' 'iss')" }
        if audience.isEmpty || audience.utf8.count > 512 { return "audience must be 1-512 bytes (what the tokens' 'aud' must hold)" }
        switch (jwksURL, keys) {
        case (nil, nil): return "give the signer's keys: jwksURL (its JWKS endpoint) or keys (a JWK set)"
        case (.some, .some): return "give jwksURL or keys, not both"
        case (.some(let url), nil):
            guard let parsed = URL(string: url), ["https", "http"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                return "jwksURL '\(url.prefix(200))' must be an http(s) URL"
            }
        case (nil, .some(let set)):
            guard let list = set["keys"]?.arrayValue, !list.isEmpty else { return "keys must be a JWK set: {\"keys\": [ ... ]}" }
            for (index, key) in list.enumerated() where key["kty"]?.stringValue == nil {
                return "keys[\(index)] has no 'kty'"
            }
        }
        for claim in [effectiveUserClaim] + (attributeClaims ?? []) where claim.isEmpty || claim.utf8.count > 128 {
            return "claim names must be 1-128 bytes"
        }
        return nil
    }
}

/// Which agents may act for which people. `agentRoles` match identities (`#attribute`, `@name`,
/// `#all`); `userRoles` match people by the attributes their signer's claims give them, by
/// `@name` (the user claim), or `#all`. An agent presenting a person's token is refused unless
/// some delegation policy matches both.
public struct DelegationPolicySpec: Codable, Sendable, Equatable {
    public var name: String
    public var agentRoles: [String]
    public var userRoles: [String]

    public init(name: String, agentRoles: [String], userRoles: [String]) {
        self.name = name; self.agentRoles = agentRoles; self.userRoles = userRoles
    }

    public static func permits(_ policies: [DelegationPolicySpec], agent: String, agentAttributes: [String], person: Person) -> Bool {
        policies.contains {
            RoleExpression.matches($0.agentRoles, name: agent, attributes: agentAttributes)
                && RoleExpression.matches($0.userRoles, name: person.name, attributes: person.attributes)
        }
    }
}
