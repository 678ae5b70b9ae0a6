import Foundation
import Shared

/// Talks to the controller's management API as an admin, over TLS to the certificate the pinned
/// network CA issued the controller (`ControllerHTTPS`).
struct ManagementClient {
    let baseURL: String
    let token: String?
    /// The network CA (PEM) the controller must be certified by.
    let caPEM: String

    static func login(controller: String, caPEM: String, username: String, password: String) async throws -> LoginResponse {
        try await ManagementClient(baseURL: controller, token: nil, caPEM: caPEM)
            .send("POST", "/v1/login", body: LoginRequest(username: username, password: password), as: LoginResponse.self)
    }

    func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        try await send("GET", path, body: Optional<String>.none, as: T.self)
    }

    func post<B: Encodable, T: Decodable>(_ path: String, _ body: B, as type: T.Type) async throws -> T {
        try await send("POST", path, body: body, as: T.self)
    }

    func put<B: Encodable, T: Decodable>(_ path: String, _ body: B, as type: T.Type) async throws -> T {
        try await send("PUT", path, body: body, as: T.self)
    }

    func delete(_ path: String) async throws {
        _ = try await raw("DELETE", path, body: nil)
    }

    private func send<B: Encodable, T: Decodable>(_ method: String, _ path: String, body: B?, as type: T.Type) async throws -> T {
        let encoder = JSONEncoder()
        let data = try await raw(method, path, body: try body.map { try encoder.encode($0) })
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do { return try decoder.decode(T.self, from: data) } catch {
            throw ManagementError.unreadable(path: path, detail: "\(error)")
        }
    }

    private func raw(_ method: String, _ path: String, body: Data?) async throws -> Data {
        let headers = [("Content-Type", "application/json")] + (token.map { [("Authorization", "Bearer \($0)")] } ?? [])
        let url = baseURL + path
        let trust = ControllerHTTPS.Trust.controller(caPEM: caPEM)
        let response: ControllerHTTPS.Response
        do {
            response = try await Self.blocking { try ControllerHTTPS.request(url, method: method, headers: headers, body: body, trust: trust) }
        } catch let error as ControllerHTTPSError {
            throw ManagementError.unreachable(baseURL, "\(error)")
        } catch {
            throw ManagementError.unreachable(baseURL, "\(error)")
        }
        guard (200..<300).contains(response.status) else {
            throw ManagementError.refused(status: response.status, message: APIErrorText.message(from: response.body))
        }
        return response.body
    }

    /// Runs blocking I/O on a thread of its own, not on the cooperative pool.
    private static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}

enum ManagementError: Error, CustomStringConvertible {
    case unreachable(String, String)
    case refused(status: Int, message: String)
    case unreadable(path: String, detail: String)
    case notLoggedIn

    var description: String {
        switch self {
        case .unreachable(let url, let why): return "cannot reach the controller at \(url): \(why)"
        case .refused(let status, let message): return "controller refused (HTTP \(status)): \(message)"
        case .unreadable(let path, let detail): return "unreadable answer from \(path): \(detail)"
        case .notLoggedIn: return "not logged in: run 'portless login --controller URL' first (or pass --profile)"
        }
    }
}

/// Where `portless login` keeps the controller URL, the CA it pins, and the admin session.
struct Profile: Codable {
    var controller: String
    var token: String
    var ca: String

    static func defaultPath() -> String {
        if let path = ProcessInfo.processInfo.environment["PORTLESS_PROFILE"] { return path }
        return (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/.portless/profile.json"
    }

    static func load(_ path: String?) throws -> Profile {
        let file = path ?? defaultPath()
        guard FileManager.default.fileExists(atPath: file) else { throw ManagementError.notLoggedIn }
        return try Files.readJSON(Profile.self, from: file)
    }

    func save(_ path: String?) throws {
        let file = path ?? Self.defaultPath()
        try Files.createDirectory((file as NSString).deletingLastPathComponent)
        try Files.writeJSON(self, to: file, privateFile: true)
    }

    var client: ManagementClient { ManagementClient(baseURL: controller, token: token, caPEM: ca) }
}
