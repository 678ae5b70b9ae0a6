import Foundation

/// What an enrollment token says: who may enroll, as what, where, until when.
public struct EnrollmentClaims: Codable, Sendable, Equatable {
    /// Token id; the controller marks it used.
    public var jti: String
    /// Name of the identity or router being enrolled.
    public var sub: String
    public var kind: PeerKind
    /// The controller's enrollment (HTTP) URL.
    public var iss: String
    /// The controller's control address (host:port), for routers and tunnelers after enrollment.
    public var ctrl: String
    /// SHA-256 of the CA certificate (hex), so the enrollee can check the CA it downloads.
    public var caSHA256: String
    public var exp: Date

    public static let tokenType = "portless-enroll"

    public init(jti: String, sub: String, kind: PeerKind, iss: String, ctrl: String, caSHA256: String, exp: Date) {
        self.jti = jti; self.sub = sub; self.kind = kind; self.iss = iss; self.ctrl = ctrl
        self.caSHA256 = caSHA256; self.exp = exp
    }
}

public enum SessionType: String, Codable, Sendable {
    case dial
    case bind
}

/// A service session: this identity may dial (or bind) this service through these routers until
/// `exp`. Signed by the controller; verified by routers without asking it.
public struct SessionClaims: Codable, Sendable, Equatable {
    public var sid: String
    public var identity: String
    public var service: String
    public var type: SessionType
    public var routers: [String]
    public var iat: Date
    public var exp: Date

    public static let tokenType = "portless-session"

    public init(sid: String, identity: String, service: String, type: SessionType, routers: [String], iat: Date, exp: Date) {
        self.sid = sid; self.identity = identity; self.service = service; self.type = type
        self.routers = routers; self.iat = iat; self.exp = exp
    }
}
