import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// HTTPS to the controller's management API, for the processes that pin the network CA: the
/// CLI, and routers and tunnelers enrolling. The overlay's own TLS engine (OpenSSL) over a
/// blocking socket, one request per connection.
///
/// Trust: the server must present a certificate the pinned CA issued *to the controller* — a
/// router's or an identity's certificate from the same CA does not pass. Without a pinned CA
/// (`trust: .none`) nothing is verified: that is only for fetching the CA itself, whose digest the
/// caller then checks against the one in its enrollment token.
public enum ControllerHTTPS {
    public enum Trust: Sendable {
        case controller(caPEM: String)
        case none
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: Data
    }

    public static let maxResponse = 64 << 20

    public static func request(_ url: String, method: String = "GET", headers: [(String, String)] = [], body: Data? = nil,
                               trust: Trust, timeout: TimeInterval = 30) throws -> Response {
        guard let parsed = URL(string: url), parsed.scheme == "https", let host = parsed.host else {
            throw ControllerHTTPSError.notHTTPS(url)
        }
        let port = parsed.port ?? 443
        let target = (parsed.path.isEmpty ? "/" : parsed.path) + (parsed.query.map { "?" + $0 } ?? "")
        let context: TLSContext
        switch trust {
        case .controller(let caPEM): context = try TLSContext(clientTrusting: caPEM)
        case .none: context = try TLSContext(clientTrusting: nil)
        }
        let socket = try BlockingSocket(host: host, port: port, timeout: timeout)
        defer { socket.close() }
        let tls = try TLSEngine(context: context)
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)

        func flush() throws {
            while true {
                let n = scratch.withUnsafeMutableBytes { tls.drainCiphertext(into: $0) }
                if n == 0 { return }
                try socket.send(scratch[0..<n])
            }
        }
        // Handshake.
        while true {
            let progress = try tls.continueHandshake()
            try flush()
            if case .complete = progress { break }
            let chunk = try socket.receive()
            guard !chunk.isEmpty else { throw ControllerHTTPSError.closed(url) }
            chunk.withUnsafeBytes { tls.feed($0) }
        }
        if case .controller = trust {
            guard let peer = tls.peerIdentity(), peer.kind == .controller else {
                throw ControllerHTTPSError.notTheController(url, tls.peerIdentity().map { "\($0)" } ?? "no certificate")
            }
        }
        // Request.
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nContent-Length: \(body?.count ?? 0)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var request = Data((head + "\r\n").utf8)
        if let body { request.append(body) }
        try request.withUnsafeBytes { try tls.writePlaintext($0) }
        try flush()
        // Response: read to the end of the connection.
        var received = Data()
        var plain = [UInt8](repeating: 0, count: 64 * 1024)
        reading: while true {
            while true {
                let n: Int
                do { n = try plain.withUnsafeMutableBytes { try tls.readPlaintext(into: $0) } } catch { break reading }  // close_notify
                if n == 0 { break }
                received.append(contentsOf: plain[0..<n])
                guard received.count <= maxResponse else { throw ControllerHTTPSError.tooLarge(url) }
            }
            let chunk = try socket.receive()
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { tls.feed($0) }
        }
        return try HTTPResponseParser.parse(received, url: url)
    }
}

public enum ControllerHTTPSError: Error, CustomStringConvertible {
    case notHTTPS(String)
    case unreachable(String, String)
    case closed(String)
    case notTheController(String, String)
    case tooLarge(String)
    case malformed(String, String)

    public var description: String {
        switch self {
        case .notHTTPS(let url): return "\(url) is not an https:// URL: the management API is served over TLS only"
        case .unreachable(let where_, let why): return "cannot reach \(where_): \(why)"
        case .closed(let url): return "\(url) closed the connection during the TLS handshake"
        case .notTheController(let url, let peer): return "\(url) is not this network's controller: its certificate is \(peer)"
        case .tooLarge(let url): return "the answer from \(url) is over \(ControllerHTTPS.maxResponse >> 20) MiB"
        case .malformed(let url, let why): return "unreadable HTTP answer from \(url): \(why)"
        }
    }
}

/// A connected TCP socket with read and write deadlines.
private final class BlockingSocket {
    private let fd: Int32

    init(host: String, port: Int, timeout: TimeInterval) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &results)
        guard status == 0, let first = results else {
            throw ControllerHTTPSError.unreachable("\(host):\(port)", String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(results) }
        var lastError = "no address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd >= 0 {
                var deadline = timeval(tv_sec: Int(timeout), tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &deadline, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &deadline, socklen_t(MemoryLayout<timeval>.size))
                if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                    self.fd = fd
                    return
                }
                lastError = String(cString: strerror(errno))
                Glibc.close(fd)
            }
            candidate = info.pointee.ai_next
        }
        throw ControllerHTTPSError.unreachable("\(host):\(port)", lastError)
    }

    func send(_ bytes: ArraySlice<UInt8>) throws {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ControllerHTTPSError.unreachable("the controller", String(cString: strerror(errno)))
            }
            offset += n
        }
    }

    /// What arrived; empty at the end of the stream.
    func receive() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return Array(buffer[0..<n]) }
            if errno == EINTR { continue }
            throw ControllerHTTPSError.unreachable("the controller", errno == EAGAIN ? "no answer in time" : String(cString: strerror(errno)))
        }
    }

    func close() { Glibc.close(fd) }
}

/// An HTTP/1.1 response read to the end of its connection: status, and the body (by
/// Content-Length, chunked, or everything that followed).
enum HTTPResponseParser {
    static func parse(_ data: Data, url: String) throws -> ControllerHTTPS.Response {
        guard let split = data.firstRange(of: Data([13, 10, 13, 10])) else { throw ControllerHTTPSError.malformed(url, "no header end") }
        let head = String(decoding: data[data.startIndex..<split.lowerBound], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw ControllerHTTPSError.malformed(url, "bad status line")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = try dechunk(body, url: url)
        } else if let length = headers["content-length"].flatMap(Int.init), length <= body.count {
            body = body.prefix(length)
        }
        return ControllerHTTPS.Response(status: status, body: body)
    }

    static func dechunk(_ data: Data, url: String) throws -> Data {
        var result = Data()
        var index = data.startIndex
        while index < data.endIndex {
            guard let lineEnd = data[index...].firstRange(of: Data([13, 10])) else { throw ControllerHTTPSError.malformed(url, "bad chunk") }
            let sizeText = String(decoding: data[index..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw ControllerHTTPSError.malformed(url, "bad chunk size")
            }
            if size == 0 { return result }
            let start = lineEnd.upperBound
            guard data.distance(from: start, to: data.endIndex) >= size else { throw ControllerHTTPSError.malformed(url, "short chunk") }
            let end = data.index(start, offsetBy: size)
            result.append(data[start..<end])
            index = data.index(end, offsetBy: 2, limitedBy: data.endIndex) ?? data.endIndex
        }
        return result
    }
}
