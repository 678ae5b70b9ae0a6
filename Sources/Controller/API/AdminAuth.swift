import Crypto
import Foundation
import Hummingbird
import Shared

/// Admin API sessions: a login with the admin credential yields a bearer token. Tokens are kept
/// (hashed) in the store so a controller restart does not log operators out.
final class AdminSessions: Sendable {
    static let lifetime: TimeInterval = 12 * 3600
    private let store: Store
    private let tokens = Locked<[String: Date]>([:])

    init(store: Store) {
        self.store = store
        let now = Date()
        let saved = (try? store.write { db -> [SQLRow] in
            try db.execute("DELETE FROM adminSession WHERE expiresAt <= ?", [now])
            return try db.rows("SELECT tokenHash, expiresAt FROM adminSession", [])
        }) ?? []
        tokens.withLock { tokens in
            for row in saved {
                if let hash = try? row.string("tokenHash"), let expires = try? row.date("expiresAt") { tokens[hash] = expires }
            }
        }
    }

    private static func digest(_ token: String) -> String {
        Hex.encode(SHA256.hash(data: Data(token.utf8)))
    }

    func login(_ request: LoginRequest) throws -> LoginResponse {
        let row = try store.read { try $0.one(AdminRow.self, key: request.username) }
        guard let row, passwordHash(request.password, salt: row.salt) == row.passwordHash else {
            throw HTTPError(.unauthorized, message: "wrong username or password")
        }
        let token = randomToken()
        let expires = Date().addingTimeInterval(Self.lifetime)
        let hash = Self.digest(token)
        tokens.withLock { $0[hash] = expires }
        store.writeInBackground("admin session") { db in
            try db.execute("INSERT INTO adminSession (tokenHash, expiresAt) VALUES (?, ?)", [hash, expires])
        }
        return LoginResponse(token: token, expiresAt: expires)
    }

    /// Ends a login (the console's sign-out), here and in the store.
    func logout(_ token: String) {
        let hash = Self.digest(token)
        tokens.withLock { _ = $0.removeValue(forKey: hash) }
        store.writeInBackground("admin logout") { db in try db.execute("DELETE FROM adminSession WHERE tokenHash = ?", [hash]) }
    }

    func isValid(_ token: String) -> Bool {
        let hash = Self.digest(token)
        let known: Bool? = tokens.withLock { tokens in
            guard let expires = tokens[hash] else { return nil }
            if expires < Date() { tokens.removeValue(forKey: hash); return false }
            return true
        }
        if let known { return known }
        // Controllers sharing PostgreSQL: a login made through another one is in the database.
        guard store.dialect == .postgres,
              let expires = try? store.read({ try $0.row("SELECT expiresAt FROM adminSession WHERE tokenHash = ?", [hash])?.date("expiresAt") }),
              expires > Date() else { return false }
        tokens.withLock { $0[hash] = expires }
        return true
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
