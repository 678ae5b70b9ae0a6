import Crypto
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
    /// SHA-256 of the CA certificate's DER (hex): the enrollee trusts the CA it downloads only
    /// if it is this one, and then the controller only if the CA issued its TLS certificate.
    public var caSHA256: String
    /// SHA-256 of the controller's session-verification key (hex): no one on the path can make
    /// the enrollee trust another key for sessions and circuit grants.
    public var sessionKeySHA256: String
    public var exp: Date

    public static let tokenType = "portless-enroll"

    public init(jti: String, sub: String, kind: PeerKind, iss: String, ctrl: String, caSHA256: String, sessionKeySHA256: String, exp: Date) {
        self.jti = jti; self.sub = sub; self.kind = kind; self.iss = iss; self.ctrl = ctrl
        self.caSHA256 = caSHA256; self.sessionKeySHA256 = sessionKeySHA256; self.exp = exp
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

/// What the controller decided for one circuit: this dialer reaches this service's host through
/// this circuit, until `exp`. Signed with the session key; routers carry it but cannot change it.
/// Each tunneler checks it names itself, then expects exactly the other identity it names as
/// its end-to-end peer — never a name a router supplied — and binds the handshake to it.
public struct CircuitGrant: Codable, Sendable, Equatable {
    public var circuit: UInt64
    public var service: String
    public var dialer: String
    public var host: String
    public var exp: Date

    public static let tokenType = "portless-circuit"
    /// Long enough for a dial's set-up; the circuit itself may live longer.
    public static let lifetime: TimeInterval = 120

    public init(circuit: UInt64, service: String, dialer: String, host: String, exp: Date) {
        self.circuit = circuit; self.service = service; self.dialer = dialer; self.host = host; self.exp = exp
    }

    /// The grant as a token signed with `key`. One is signed and verified twice per dial, so its
    /// claims are written and read by hand, in the layout the synthesized `Codable` reads and
    /// writes (sorted keys, `exp` in seconds since 1970).
    public func signed(with key: Curve25519.Signing.PrivateKey) throws -> String {
        var out = Array(#"{"circuit":"#.utf8)
        out.append(contentsOf: String(circuit).utf8)
        out.append(contentsOf: #","dialer":"#.utf8)
        JSONValue.write(string: dialer, to: &out)
        out.append(contentsOf: #","exp":"#.utf8)
        out.append(contentsOf: JSONNumber(exp.timeIntervalSince1970).text.utf8)
        out.append(contentsOf: #","host":"#.utf8)
        JSONValue.write(string: host, to: &out)
        out.append(contentsOf: #","service":"#.utf8)
        JSONValue.write(string: service, to: &out)
        out.append(UInt8(ascii: "}"))
        return try SignedToken.sign(payload: out, type: Self.tokenType, key: key)
    }

    /// The grant in `token`, if the controller signed it for `circuit` and it has not expired.
    public static func verified(_ token: String, circuit: UInt64, key: Curve25519.Signing.PublicKey, now: Date = Date()) throws -> CircuitGrant {
        let payload = try SignedToken.verifiedPayload(token, type: tokenType, key: key)
        guard case .object(let claims)? = try? JSONParser.parse(payload),
              case .number(let number)? = claims["circuit"], let granted = number.uint64Value,
              let service = claims["service"]?.stringValue, let dialer = claims["dialer"]?.stringValue,
              let host = claims["host"]?.stringValue, let exp = claims["exp"]?.numberValue else { throw TokenError.malformed }
        let grant = CircuitGrant(circuit: granted, service: service, dialer: dialer, host: host, exp: Date(timeIntervalSince1970: exp))
        guard grant.exp > now else { throw TokenError.expired(at: grant.exp) }
        guard grant.circuit == circuit else { throw CircuitGrantError.wrongCircuit(granted: grant.circuit, offered: circuit) }
        return grant
    }
}

public enum CircuitGrantError: Error, CustomStringConvertible {
    case wrongCircuit(granted: UInt64, offered: UInt64)
    case notForUs(String)

    public var description: String {
        switch self {
        case .wrongCircuit(let granted, let offered): return "the circuit grant is for circuit \(granted), not \(offered)"
        case .notForUs(let why): return "the circuit grant \(why)"
        }
    }
}
