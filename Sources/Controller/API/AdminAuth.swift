import Crypto
import Foundation
import GRDB
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
        let saved = (try? store.pool.write { db -> [Row] in
            try db.execute(sql: "DELETE FROM adminSession WHERE expiresAt <= ?", arguments: [now])
            return try Row.fetchAll(db, sql: "SELECT tokenHash, expiresAt FROM adminSession")
        }) ?? []
        tokens.withLock { tokens in
            for row in saved { tokens[row["tokenHash"]] = row["expiresAt"] }
        }
    }

    private static func digest(_ token: String) -> String {
        Hex.encode(SHA256.hash(data: Data(token.utf8)))
    }

    func login(_ request: LoginRequest) throws -> LoginResponse {
        let row = try store.pool.read { try AdminRow.fetchOne($0, key: request.username) }
        guard let row, passwordHash(request.password, salt: row.salt) == row.passwordHash else {
            throw HTTPError(.unauthorized, message: "wrong username or password")
        }
        let token = randomToken()
        let expires = Date().addingTimeInterval(Self.lifetime)
        let hash = Self.digest(token)
        tokens.withLock { $0[hash] = expires }
        store.writeInBackground("admin session") { db in
            try db.execute(sql: "INSERT INTO adminSession (tokenHash, expiresAt) VALUES (?, ?)", arguments: [hash, expires])
        }
        return LoginResponse(token: token, expiresAt: expires)
    }

    func isValid(_ token: String) -> Bool {
        let hash = Self.digest(token)
        return tokens.withLock { tokens in
            guard let expires = tokens[hash] else { return false }
            if expires < Date() { tokens.removeValue(forKey: hash); return false }
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
