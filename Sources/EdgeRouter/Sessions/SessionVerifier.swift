import Crypto
import Foundation
import Shared

/// Decides locally, without asking the controller, whether a service session presented by a
/// tunneler is good: signed by the controller, unexpired, of the right type, held by the identity
/// whose certificate is on the connection, valid on this router, and not revoked.
struct SessionVerifier {
    let routerName: String
    let key: Curve25519.Signing.PublicKey
    private(set) var revoked: [String: Date] = [:]

    init(routerName: String, key: Curve25519.Signing.PublicKey) {
        self.routerName = routerName
        self.key = key
    }

    func verify(_ token: String, presentedBy identity: String, type: SessionType, now: Date = Date()) throws -> SessionClaims {
        let claims = try SignedToken.verify(token, type: SessionClaims.tokenType, as: SessionClaims.self, key: key)
        guard claims.exp > now else { throw TokenError.expired(at: claims.exp) }
        guard revoked[claims.sid] == nil else { throw TokenError.revoked }
        guard claims.identity == identity else {
            throw SessionError.wrongHolder(sessionFor: claims.identity, presentedBy: identity)
        }
        guard claims.type == type else { throw SessionError.wrongType(claims.type) }
        guard claims.routers.contains(routerName) else { throw SessionError.routerNotAllowed(routerName) }
        return claims
    }

    mutating func revoke(_ sessionIDs: [String], now: Date = Date()) {
        // A revoked id is kept for the longest a session can live; past that it could not verify anyway.
        let keepUntil = now.addingTimeInterval(2 * 3600)
        for sid in sessionIDs { revoked[sid] = keepUntil }
        revoked = revoked.filter { $0.value > now }
    }

    func isRevoked(_ sessionID: String) -> Bool { revoked[sessionID] != nil }
}

enum SessionError: Error, CustomStringConvertible {
    case wrongHolder(sessionFor: String, presentedBy: String)
    case wrongType(SessionType)
    case routerNotAllowed(String)

    var description: String {
        switch self {
        case .wrongHolder(let owner, let presenter): return "session belongs to '\(owner)', presented by '\(presenter)'"
        case .wrongType(let type): return "session is a \(type.rawValue) session"
        case .routerNotAllowed(let router): return "session does not allow router '\(router)'"
        }
    }
}
