/// Where a hosted service listens on the tunneler's machine: `127.0.0.1:8080` or
/// `unix:/run/service.sock`.
public enum LocalAddress: Hashable, Codable, Sendable, CustomStringConvertible {
    case tcp(SocketAddress)
    case unix(String)

    public init(parsing text: String) throws {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.hasPrefix("/") else { throw AddressError.malformed(text) }
            self = .unix(path)
        } else {
            self = .tcp(try SocketAddress(parsing: text))
        }
    }

    public var description: String {
        switch self {
        case .tcp(let address): return address.description
        case .unix(let path): return "unix:\(path)"
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(error) (or unix:/absolute/path)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
