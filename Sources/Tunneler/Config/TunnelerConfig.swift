import Foundation
import LLMGateway
import MCPGateway
import Shared
import Yams

/// `portless-tunnel run --config FILE`: which identity to use, what to intercept, what to host.
struct TunnelerConfig: Codable {
    struct Intercept: Codable {
        var service: String
        var listen: SocketAddress
    }
    struct Host: Codable {
        var service: String
        /// `127.0.0.1:8080` or `unix:/run/service.sock`.
        var address: LocalAddress?
        var proxyProtocol: Bool?
        /// How this terminator ranks among the service's others (required, default, failed).
        var precedence: TerminatorPrecedence?
        /// Added to the path cost when a dial chooses among terminators.
        var cost: Double?
        /// `mcp-gateway`: the service is the tunneler's own MCP gateway over `upstreams`.
        var kind: String?
        var upstreams: [UpstreamConfig]?
        var separator: String?
        var pageSize: Int?
        var allowedOrigins: [String]?
        /// `llm-gateway`: the tunneler's own LLM gateway over `providers`.
        var providers: [ProviderConfig]?
        var timeoutMs: Int?
        var retries: Int?

        enum CodingKeys: String, CodingKey {
            case service, address, precedence, cost, kind, upstreams, separator, providers, retries
            case proxyProtocol = "proxy_protocol"
            case pageSize = "page_size"
            case allowedOrigins = "allowed_origins"
            case timeoutMs = "timeout_ms"
        }

        static let mcpGatewayKind = "mcp-gateway"
        static let llmGatewayKind = "llm-gateway"

        var llmGateway: LLMGatewayConfig? {
            guard kind == Self.llmGatewayKind else { return nil }
            return LLMGatewayConfig(providers: providers ?? [], timeoutMs: timeoutMs, retries: retries)
        }

        var mcpGateway: MCPGatewayConfig? {
            guard kind == Self.mcpGatewayKind else { return nil }
            return MCPGatewayConfig(upstreams: upstreams ?? [], separator: separator, pageSize: pageSize, allowedOrigins: allowedOrigins)
        }
    }

    /// The directory `portless-tunnel enroll` wrote.
    var identity: String
    var intercepts: [Intercept]?
    var hosts: [Host]?

    static func load(_ path: String) throws -> TunnelerConfig {
        let text = try Files.read(path)
        do { return try YAMLDecoder().decode(TunnelerConfig.self, from: text) } catch {
            throw FileError.invalid(path: path, reason: "\(error)")
        }
    }

    /// Intercepts must stay on loopback: a tunneler never listens on the network.
    func validate() throws {
        for intercept in intercepts ?? [] where !intercept.listen.isLoopback {
            throw ConfigError.nonLoopbackIntercept(intercept.listen)
        }
        for host in hosts ?? [] {
            if let kind = host.kind, kind != Host.mcpGatewayKind, kind != Host.llmGatewayKind {
                throw ConfigError.invalidHost(host.service, "kind '\(kind)' is unknown; known kinds: \(Host.mcpGatewayKind), \(Host.llmGatewayKind)")
            }
            if let gateway = host.llmGateway {
                if host.address != nil { throw ConfigError.invalidHost(host.service, "an llm-gateway host has providers, not an address") }
                if let problem = gateway.problem() { throw ConfigError.invalidHost(host.service, problem) }
                continue
            }
            if let gateway = host.mcpGateway {
                if host.address != nil { throw ConfigError.invalidHost(host.service, "an mcp-gateway host has upstreams, not an address") }
                if let problem = gateway.problem() { throw ConfigError.invalidHost(host.service, problem) }
            } else if host.upstreams != nil {
                throw ConfigError.invalidHost(host.service, "upstreams need kind: mcp-gateway")
            }
        }
    }
}

enum ConfigError: Error, CustomStringConvertible {
    case nonLoopbackIntercept(SocketAddress)
    case invalidHost(String, String)
    var description: String {
        switch self {
        case .invalidHost(let service, let problem):
            return "host '\(service)': \(problem)"

        case .nonLoopbackIntercept(let address):
            return "intercept address \(address) is not loopback; a tunneler listens only on 127.0.0.1 or ::1"
        }
    }
}
