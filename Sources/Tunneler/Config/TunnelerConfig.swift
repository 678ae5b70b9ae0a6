import Foundation
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

        enum CodingKeys: String, CodingKey {
            case service, address, precedence, cost
            case proxyProtocol = "proxy_protocol"
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
    }
}

enum ConfigError: Error, CustomStringConvertible {
    case nonLoopbackIntercept(SocketAddress)
    var description: String {
        switch self {
        case .nonLoopbackIntercept(let address):
            return "intercept address \(address) is not loopback; a tunneler listens only on 127.0.0.1 or ::1"
        }
    }
}
