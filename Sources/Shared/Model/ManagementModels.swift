import Foundation

// The management API's resources, shared by the controller (which stores them) and the CLI
// (which sends them). Roles are written without '#'; policy role expressions use `#attr`,
// `@name` or `#all`.

public struct IdentitySpec: Codable, Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public init(name: String, roles: [String] = []) { self.name = name; self.roles = roles }
}

public struct IdentityRecord: Codable, Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public var enrolled: Bool
    public var createdAt: Date
    /// Present only in the response that created the identity or re-issued its token.
    public var enrollmentToken: String?

    public init(name: String, roles: [String], enrolled: Bool, createdAt: Date, enrollmentToken: String?) {
        self.name = name
        self.roles = roles
        self.enrolled = enrolled
        self.createdAt = createdAt
        self.enrollmentToken = enrollmentToken
    }
}

public struct RouterSpec: Codable, Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public init(name: String, roles: [String] = []) { self.name = name; self.roles = roles }
}

public struct RouterRecord: Codable, Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public var enrolled: Bool
    public var online: Bool
    public var edgeAddress: String?
    public var createdAt: Date
    public var enrollmentToken: String?

    public init(name: String, roles: [String], enrolled: Bool, online: Bool, edgeAddress: String?, createdAt: Date, enrollmentToken: String?) {
        self.name = name
        self.roles = roles
        self.enrolled = enrolled
        self.online = online
        self.edgeAddress = edgeAddress
        self.createdAt = createdAt
        self.enrollmentToken = enrollmentToken
    }
}

public struct ServiceSpec: Codable, Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public var configs: [String]
    public init(name: String, roles: [String] = [], configs: [String] = []) {
        self.name = name; self.roles = roles; self.configs = configs
    }
}

public struct ConfigSpec: Codable, Sendable, Equatable {
    /// `intercept.v1` (data: {"address": "127.0.0.1:8080"}) or `host.v1`
    /// (data: {"address": "127.0.0.1:80", "proxyProtocol": true}).
    public var name: String
    public var type: String
    public var data: JSONValue
    public init(name: String, type: String, data: JSONValue) { self.name = name; self.type = type; self.data = data }

    public static let knownTypes = ["intercept.v1", "host.v1", "mcp-tools.v1", "llm-policy.v1"]
}

public struct ServicePolicySpec: Codable, Sendable, Equatable {
    public var name: String
    public var type: SessionType
    public var identityRoles: [String]
    public var serviceRoles: [String]
    public init(name: String, type: SessionType, identityRoles: [String], serviceRoles: [String]) {
        self.name = name; self.type = type; self.identityRoles = identityRoles; self.serviceRoles = serviceRoles
    }
}

public struct EdgeRouterPolicySpec: Codable, Sendable, Equatable {
    public var name: String
    public var identityRoles: [String]
    public var routerRoles: [String]
    public init(name: String, identityRoles: [String], routerRoles: [String]) {
        self.name = name; self.identityRoles = identityRoles; self.routerRoles = routerRoles
    }
}

public struct ServiceEdgeRouterPolicySpec: Codable, Sendable, Equatable {
    public var name: String
    public var serviceRoles: [String]
    public var routerRoles: [String]
    public init(name: String, serviceRoles: [String], routerRoles: [String]) {
        self.name = name; self.serviceRoles = serviceRoles; self.routerRoles = routerRoles
    }
}

/// A link between two routers that the operator wants (router `a` dials `b`), with a cost in
/// milliseconds added to its measured latency. With no links configured, routers form a full mesh.
public struct LinkSpec: Codable, Sendable, Equatable {
    public var name: String
    public var a: String
    public var b: String
    public var cost: Double?
    public init(name: String, a: String, b: String, cost: Double? = nil) { self.name = name; self.a = a; self.b = b; self.cost = cost }
}

public struct EnrollmentRequest: Codable, Sendable {
    public var token: String
    public var csr: String
    public init(token: String, csr: String) { self.token = token; self.csr = csr }
}

public struct EnrollmentResponse: Codable, Sendable {
    public var certificate: String
    public var ca: String
    /// The controller's Ed25519 session-verification key (base64), for routers.
    public var sessionKey: String
    public var controlAddress: String
    /// Every controller of the network (control addresses), when there are several.
    public var controlAddresses: [String]?

    public init(certificate: String, ca: String, sessionKey: String, controlAddress: String, controlAddresses: [String]? = nil) {
        self.controlAddresses = controlAddresses
        self.certificate = certificate
        self.ca = ca
        self.sessionKey = sessionKey
        self.controlAddress = controlAddress
    }
}

public struct LoginRequest: Codable, Sendable {
    public var username: String
    public var password: String
    public init(username: String, password: String) { self.username = username; self.password = password }
}

public struct LoginResponse: Codable, Sendable {
    public var token: String
    public var expiresAt: Date

    public init(token: String, expiresAt: Date) {
        self.token = token
        self.expiresAt = expiresAt
    }
}

/// What the controller knows of the live network: for `topology up` readiness and operators.
public struct NetworkStatus: Codable, Sendable {
    public struct Terminator: Codable, Sendable {
        public var id: String
        public var service: String
        public var identity: String
        public var router: String

        public init(id: String, service: String, identity: String, router: String) {
            self.id = id
            self.service = service
            self.identity = identity
            self.router = router
        }
    }
    public struct Circuit: Codable, Sendable {
        public var id: UInt64
        public var service: String
        public var dialer: String
        public var host: String
        public var router: String
        public var path: [String]

        public init(id: UInt64, service: String, dialer: String, host: String, router: String, path: [String]) {
            self.path = path
            self.id = id
            self.service = service
            self.dialer = dialer
            self.host = host
            self.router = router
        }
    }
    public var routers: [String]
    public var terminators: [Terminator]
    public var circuits: [Circuit]
    /// Links that are up, with measured latency in milliseconds.
    public var links: [LinkStatus]
    /// Tunnelers (identities) with a control connection to this controller.
    public var clients: [String]?

    public struct LinkStatus: Codable, Sendable {
        public var a: String
        public var b: String
        public var latencyMs: Double
        public init(a: String, b: String, latencyMs: Double) { self.a = a; self.b = b; self.latencyMs = latencyMs }
    }

    public init(routers: [String], terminators: [Terminator], circuits: [Circuit], links: [LinkStatus], clients: [String]? = nil) {
        self.clients = clients
        self.links = links
        self.routers = routers
        self.terminators = terminators
        self.circuits = circuits
    }
}

public struct AuditEvent: Codable, Sendable {
    public var seq: Int64
    public var at: Date
    public var type: String
    public var identity: String?
    /// The person the agent acted for, when it presented their token.
    public var user: String?
    public var service: String?
    public var circuit: UInt64?
    public var detail: String
    public var hash: String

    public init(seq: Int64, at: Date, type: String, identity: String?, user: String? = nil, service: String?, circuit: UInt64?, detail: String, hash: String) {
        self.seq = seq
        self.at = at
        self.type = type
        self.identity = identity
        self.user = user
        self.service = service
        self.circuit = circuit
        self.detail = detail
        self.hash = hash
    }
}

public struct APIErrorBody: Codable, Sendable {
    public var error: String
    public init(error: String) { self.error = error }
}

/// `POST /v1/identities/NAME/revoke`, `/v1/routers/NAME/revoke`: what was revoked.
public struct RevocationResult: Codable, Sendable, Equatable {
    public var entity: String
    public var revokedCertificates: [String]
    public init(entity: String, revokedCertificates: [String]) { self.entity = entity; self.revokedCertificates = revokedCertificates }
}

/// One of the network's controllers, as the controllers register themselves.
public struct ControllerRecord: Codable, Sendable {
    public var name: String
    public var controlAddress: String
    public var apiAddress: String
    public var startedAt: Date

    public init(name: String, controlAddress: String, apiAddress: String, startedAt: Date) {
        self.name = name
        self.controlAddress = controlAddress
        self.apiAddress = apiAddress
        self.startedAt = startedAt
    }
}
