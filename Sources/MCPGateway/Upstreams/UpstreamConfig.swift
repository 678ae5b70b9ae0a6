import Foundation
import GatewayKit
import Shared

/// The `mcp-gateway` part of a tunneler's `hosts:` entry.
public struct MCPGatewayConfig: Codable, Sendable, Equatable {
    public var upstreams: [UpstreamConfig]
    /// Between a server's prefix and an item's name; `__` gives `tickets__create`.
    public var separator: String?
    /// Items per page of a downstream list; a caller follows `nextCursor` for the rest.
    public var pageSize: Int?
    /// Origins allowed besides loopback ones (browser clients).
    public var allowedOrigins: [String]?

    enum CodingKeys: String, CodingKey {
        case upstreams, separator
        case pageSize = "page_size"
        case allowedOrigins = "allowed_origins"
    }

    public init(upstreams: [UpstreamConfig], separator: String? = nil, pageSize: Int? = nil, allowedOrigins: [String]? = nil) {
        self.upstreams = upstreams
        self.separator = separator
        self.pageSize = pageSize
        self.allowedOrigins = allowedOrigins
    }

    /// Why this configuration cannot run, or nil.
    public func problem() -> String? {
        if upstreams.isEmpty { return "an mcp-gateway needs at least one entry in upstreams" }
        var names = Set<String>()
        for upstream in upstreams {
            if let problem = upstream.problem() { return problem }
            if !names.insert(upstream.name).inserted { return "two upstreams are named '\(upstream.name)'" }
        }
        if let separator, separator.isEmpty { return "separator must not be empty" }
        if let pageSize, pageSize < 1 { return "page_size must be at least 1" }
        return nil
    }
}

/// One MCP server behind the gateway: a command it starts (stdio) or a Streamable HTTP URL.
public struct UpstreamConfig: Codable, Sendable, Equatable {
    public var name: String
    /// Stdio: the command line, program first.
    public var command: [String]?
    public var env: [String: String]?
    public var cwd: String?
    /// Streamable HTTP: the server's private URL.
    public var url: String?
    public var headers: [String: String]?
    /// Header name → environment variable holding its value (kept out of config files).
    public var headersFromEnv: [String: String]?
    public var bearerEnv: String?
    public var bearerFile: String?
    /// The prefix of this server's items (its name by default).
    public var prefix: String?
    /// How long one request may take before the caller gets a timeout error.
    public var timeoutMs: Int?
    /// The `aud` of the statements the gateway signs for this server (its name by default).
    public var audience: String?

    enum CodingKeys: String, CodingKey {
        case name, command, env, cwd, url, headers, prefix, audience
        case headersFromEnv = "headers_from_env"
        case bearerEnv = "bearer_env"
        case bearerFile = "bearer_file"
        case timeoutMs = "timeout_ms"
    }

    public init(name: String, command: [String]? = nil, url: String? = nil, timeoutMs: Int? = nil) {
        self.name = name
        self.command = command
        self.url = url
        self.timeoutMs = timeoutMs
    }

    var effectivePrefix: String { prefix ?? name }
    var timeout: Duration { .milliseconds(timeoutMs ?? 30_000) }

    func problem() -> String? {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            return "upstream name '\(name)' must be letters, digits, '-' or '_'"
        }
        switch (command, url) {
        case (let command?, nil):
            if command.isEmpty { return "upstream '\(name)': command is empty" }
        case (nil, let url?):
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                return "upstream '\(name)': url '\(url)' must be an http(s) URL"
            }
        default:
            return "upstream '\(name)' needs exactly one of command (stdio) or url (Streamable HTTP)"
        }
        if let timeoutMs, timeoutMs < 1 { return "upstream '\(name)': timeout_ms must be positive" }
        return nil
    }

    /// The HTTP headers to send, with secrets read from the environment and files now.
    func resolvedHeaders() throws -> [(String, String)] {
        var headers = (headers ?? [:]).map { ($0.key, $0.value) }
        for (header, variable) in headersFromEnv ?? [:] {
            guard let value = ProcessInfo.processInfo.environment[variable] else {
                throw RPCError(code: JSONRPC.internalError, message: "upstream '\(name)': environment variable \(variable) (for header \(header)) is not set")
            }
            headers.append((header, value))
        }
        if let variable = bearerEnv {
            guard let value = ProcessInfo.processInfo.environment[variable] else {
                throw RPCError(code: JSONRPC.internalError, message: "upstream '\(name)': environment variable \(variable) (bearer token) is not set")
            }
            headers.append(("Authorization", "Bearer \(value)"))
        }
        if let file = bearerFile {
            let token = try Files.read(file).trimmingCharacters(in: .whitespacesAndNewlines)
            headers.append(("Authorization", "Bearer \(token)"))
        }
        return headers
    }
}
