import Foundation
import Shared

// Rows of the controller's store. Role lists are stored as JSON text (StoreRecord's coding);
// names are primary keys because operators address everything by name.

struct IdentityRow: Codable, StoreRecord {
    static let table = "identity"
    var name: String
    var roles: [String]
    var enrolled: Bool
    var createdAt: Date
}

struct RouterRow: Codable, StoreRecord {
    static let table = "router"
    var name: String
    var roles: [String]
    var enrolled: Bool
    var createdAt: Date
}

struct ServiceRow: Codable, StoreRecord {
    static let table = "service"
    var name: String
    var roles: [String]
    var configs: [String]
}

struct ConfigRow: Codable, StoreRecord {
    static let table = "config"
    var name: String
    var type: String
    var data: JSONValue
}

struct ServicePolicyRow: Codable, StoreRecord {
    static let table = "servicePolicy"
    var name: String
    var type: SessionType
    var identityRoles: [String]
    var serviceRoles: [String]
}

struct EdgeRouterPolicyRow: Codable, StoreRecord {
    static let table = "edgeRouterPolicy"
    var name: String
    var identityRoles: [String]
    var routerRoles: [String]
}

struct ServiceEdgeRouterPolicyRow: Codable, StoreRecord {
    static let table = "serviceEdgeRouterPolicy"
    var name: String
    var serviceRoles: [String]
    var routerRoles: [String]
}

struct LinkRow: Codable, StoreRecord {
    static let table = "link"
    var name: String
    /// `a` dials `b`.
    var a: String
    var b: String
    var cost: Double
}

struct EnrollmentRow: Codable, StoreRecord {
    static let table = "enrollment"
    static let primaryKey = ["jti"]
    var jti: String
    var subject: String
    var kind: PeerKind
    var expiresAt: Date
    var usedAt: Date?
}

struct AdminRow: Codable, StoreRecord {
    static let table = "admin"
    static let primaryKey = ["username"]
    var username: String
    var salt: String
    var passwordHash: String
}

struct AuditRow: Codable, StoreRecord {
    static let table = "audit"
    static let primaryKey = ["seq"]
    var seq: Int64?
    var at: Date
    var type: String
    var identity: String?
    var user: String?
    var service: String?
    var circuit: Int64?
    var detail: String
    var prevHash: String
    var hash: String
}

struct ExternalJWTSignerRow: Codable, StoreRecord {
    static let table = "externalJWTSigner"
    var name: String
    var issuer: String
    var audience: String
    var jwksURL: String?
    var keys: JSONValue?
    var userClaim: String?
    var attributeClaims: [String]?

    init(_ spec: ExternalJWTSignerSpec) {
        name = spec.name; issuer = spec.issuer; audience = spec.audience; jwksURL = spec.jwksURL; keys = spec.keys
        userClaim = spec.userClaim; attributeClaims = spec.attributeClaims
    }

    var spec: ExternalJWTSignerSpec {
        ExternalJWTSignerSpec(name: name, issuer: issuer, audience: audience, jwksURL: jwksURL, keys: keys,
                              userClaim: userClaim, attributeClaims: attributeClaims)
    }
}

struct DelegationPolicyRow: Codable, StoreRecord {
    static let table = "delegationPolicy"
    var name: String
    var agentRoles: [String]
    var userRoles: [String]

    var spec: DelegationPolicySpec { DelegationPolicySpec(name: name, agentRoles: agentRoles, userRoles: userRoles) }
}

struct AssertionKeyRow: Codable, StoreRecord {
    static let table = "assertionKey"
    static let primaryKey = ["kid"]
    var kid: String
    var identity: String
    var jwk: JSONValue
    var publishedAt: Date
}

struct ControllerRow: StoreRecord {
    static let table = "controller"
    var name: String
    var controlAddress: String
    var apiAddress: String
    var startedAt: Date
}
