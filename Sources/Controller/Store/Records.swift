import Foundation
import GRDB
import Shared

// Rows of the controller's SQLite store. Role lists are stored as JSON text by GRDB's Codable
// support; names are primary keys because operators address everything by name.

struct IdentityRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "identity"
    var name: String
    var roles: [String]
    var enrolled: Bool
    var createdAt: Date
}

struct RouterRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "router"
    var name: String
    var roles: [String]
    var enrolled: Bool
    var createdAt: Date
}

struct ServiceRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "service"
    var name: String
    var roles: [String]
    var configs: [String]
}

struct ConfigRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "config"
    var name: String
    var type: String
    var data: JSONValue
}

struct ServicePolicyRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "servicePolicy"
    var name: String
    var type: SessionType
    var identityRoles: [String]
    var serviceRoles: [String]
}

struct EdgeRouterPolicyRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "edgeRouterPolicy"
    var name: String
    var identityRoles: [String]
    var routerRoles: [String]
}

struct ServiceEdgeRouterPolicyRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "serviceEdgeRouterPolicy"
    var name: String
    var serviceRoles: [String]
    var routerRoles: [String]
}

struct LinkRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "link"
    var name: String
    /// `a` dials `b`.
    var a: String
    var b: String
    var cost: Double
}

struct EnrollmentRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "enrollment"
    var jti: String
    var subject: String
    var kind: PeerKind
    var expiresAt: Date
    var usedAt: Date?
}

struct AdminRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "admin"
    var username: String
    var salt: String
    var passwordHash: String
}

struct AuditRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "audit"
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

struct ExternalJWTSignerRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "externalJWTSigner"
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

struct DelegationPolicyRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "delegationPolicy"
    var name: String
    var agentRoles: [String]
    var userRoles: [String]

    var spec: DelegationPolicySpec { DelegationPolicySpec(name: name, agentRoles: agentRoles, userRoles: userRoles) }
}

struct AssertionKeyRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "assertionKey"
    var kid: String
    var identity: String
    var jwk: JSONValue
    var publishedAt: Date
}
