import CLibUV
import Foundation

/// A host:port pair as written in configs (`127.0.0.1:6262`, `[::1]:6262`, `localhost:80`).
public struct SocketAddress: Hashable, Codable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let hostPart: Substring
        let portPart: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]"), trimmed[trimmed.index(after: close)...].hasPrefix(":") else {
                throw AddressError.malformed(text)
            }
            hostPart = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            portPart = trimmed[trimmed.index(close, offsetBy: 2)...]
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else { throw AddressError.malformed(text) }
            hostPart = trimmed[..<colon]
            portPart = trimmed[trimmed.index(after: colon)...]
        }
        guard let port = Int(portPart), (0...65535).contains(port), !hostPart.isEmpty else {
            throw AddressError.malformed(text)
        }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var isLoopback: Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(error)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Fills a sockaddr_storage for libuv. Only numeric hosts (and `localhost`) are accepted:
    /// name resolution would block the loop.
    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>) throws -> T) throws -> T {
        var storage = sockaddr_storage()
        let numericHost = host == "localhost" ? "127.0.0.1" : host
        let rc: Int32 = withUnsafeMutablePointer(to: &storage) { ptr in
            if numericHost.contains(":") {
                return ptr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { uv_ip6_addr(numericHost, Int32(port), $0) }
            }
            return ptr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_addr(numericHost, Int32(port), $0) }
        }
        guard rc == 0 else { throw AddressError.notNumeric(host) }
        return try withUnsafePointer(to: &storage) { ptr in
            try ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0) }
        }
    }

    static func from(_ storage: sockaddr_storage) -> SocketAddress? {
        var storage = storage
        let family = storage.ss_family
        var name = [CChar](repeating: 0, count: 64)
        return withUnsafePointer(to: &storage) { ptr -> SocketAddress? in
            if family == sa_family_t(AF_INET) {
                return ptr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    uv_ip4_name(sin, &name, name.count)
                    return SocketAddress(host: String(nulTerminated: name), port: Int(UInt16(bigEndian: sin.pointee.sin_port)))
                }
            }
            if family == sa_family_t(AF_INET6) {
                return ptr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    uv_ip6_name(sin, &name, name.count)
                    return SocketAddress(host: String(nulTerminated: name), port: Int(UInt16(bigEndian: sin.pointee.sin6_port)))
                }
            }
            return nil
        }
    }
}

public enum AddressError: Error, CustomStringConvertible {
    case malformed(String)
    case notNumeric(String)

    public var description: String {
        switch self {
        case .malformed(let text): return "'\(text)' is not an address; expected host:port (e.g. 127.0.0.1:6262)"
        case .notNumeric(let host): return "'\(host)' is not a numeric IP address (or localhost)"
        }
    }
}
