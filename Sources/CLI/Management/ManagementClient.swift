import AsyncHTTPClient
import Foundation
import NIOCore
import Shared

/// Talks to the controller's management API as an admin.
struct ManagementClient {
    let baseURL: String
    let token: String?

    static func login(controller: String, username: String, password: String) async throws -> LoginResponse {
        try await ManagementClient(baseURL: controller, token: nil)
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
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .RAW(value: method)
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        do { response = try await HTTPClient.shared.execute(request, timeout: .seconds(30)) } catch {
            throw ManagementError.unreachable(baseURL, "\(error)")
        }
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw ManagementError.refused(status: Int(response.status.code), message: APIErrorText.message(from: data))
        }
        return data
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

/// Where `portless login` keeps the controller URL and admin session.
struct Profile: Codable {
    var controller: String
    var token: String

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

    var client: ManagementClient { ManagementClient(baseURL: controller, token: token) }
}
