import Foundation
import GRDB
import Hummingbird
import Shared

/// Admin API sessions: a login with the admin credential yields a bearer token.
final class AdminSessions: Sendable {
    static let lifetime: TimeInterval = 12 * 3600
    private let store: Store
    private let tokens = Locked<[String: Date]>([:])

    init(store: Store) { self.store = store }

    func login(_ request: LoginRequest) throws -> LoginResponse {
        let row = try store.pool.read { try AdminRow.fetchOne($0, key: request.username) }
        guard let row, passwordHash(request.password, salt: row.salt) == row.passwordHash else {
            throw HTTPError(.unauthorized, message: "wrong username or password")
        }
        let token = randomToken()
        let expires = Date().addingTimeInterval(Self.lifetime)
        tokens.withLock { $0[token] = expires }
        return LoginResponse(token: token, expiresAt: expires)
    }

    func isValid(_ token: String) -> Bool {
        tokens.withLock { tokens in
            guard let expires = tokens[token] else { return false }
            if expires < Date() { tokens.removeValue(forKey: token); return false }
            return true
        }
    }
}

/// Refuses management requests without a valid admin bearer token.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let sessions: AdminSessions

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              sessions.isValid(String(header.dropFirst("Bearer ".count))) else {
            throw HTTPError(.unauthorized, message: "admin login required: run 'portless login' (or send 'Authorization: Bearer <token>')")
        }
        return try await next(request, context)
    }
}
