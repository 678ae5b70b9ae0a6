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
    /// Tokens whose signature held, with their claims. A tunneler presents the same session for
    /// every dial while it lasts, and checking an Ed25519 signature is most of what deciding
    /// costs; only that check is skipped for a token seen before: expiry, revocation, holder, type
    /// and router are decided every time. Only the controller can make a token that gets in.
    private let verified = VerifiedTokens()

    init(routerName: String, key: Curve25519.Signing.PublicKey) {
        self.routerName = routerName
        self.key = key
    }

    func verify(_ token: String, presentedBy identity: String, type: SessionType, now: Date = Date()) throws -> SessionClaims {
        let claims: SessionClaims
        if let known = verified.claims[token] {
            claims = known
        } else {
            claims = try SignedToken.verify(token, type: SessionClaims.tokenType, as: SessionClaims.self, key: key)
            verified.keep(token, claims, now: now)
        }
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

/// The sessions a router verified, by token; used on the router's loop only.
final class VerifiedTokens {
    static let limit = 4_096
    private(set) var claims: [String: SessionClaims] = [:]

    func keep(_ token: String, _ verified: SessionClaims, now: Date) {
        if claims.count >= Self.limit {
            claims = claims.filter { $0.value.exp > now }
            if claims.count >= Self.limit { claims.removeAll() }
        }
        claims[token] = verified
    }
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
