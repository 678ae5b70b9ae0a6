import ArgumentParser
import Crypto
import Foundation
import Shared

/// `portless demo-http`: the private service of the quickstart. It answers plain HTTP/1.1 and,
/// when a PROXY protocol v2 header precedes the request, greets the caller by the identity the
/// overlay verified. Routes: `/` (greeting), `/bytes?n=N` (N bytes of `DemoPayload`), `/hold`
/// (headers, then an open connection: for revocation tests), and `PUT /sha256` (answers the
/// SHA-256 of the uploaded body: for upload tests).
struct DemoHTTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo-http", abstract: "Run the demo private HTTP service.")
    @Option(help: "Listen address: 127.0.0.1:PORT or unix:/path.") var listen: String

    func run() throws {
        let address = try LocalAddress(parsing: listen)
        ResourceLimits.raiseOpenFileLimit()
        let loop = try EventLoop()
        SignalHandling.stopOnTermination(loop)
        var listener: AnyObject?
        try loop.run {
            listener = try LocalListener.listen(loop: loop, on: address) { connection in DemoHTTPExchange.start(connection) }
            print("demo-http listening on \(address)")
        }
        withExtendedLifetime(listener) {}
    }
}

final class DemoHTTPExchange {
    private let connection: StreamConnection
    private var buffer: [UInt8] = []
    private var caller: String?
    private var sawPreamble = false
    private var remaining = 0
    private var offset = 0
    private var upload: SHA256?
    private var retained: DemoHTTPExchange?

    static func start(_ connection: StreamConnection) {
        let exchange = DemoHTTPExchange(connection: connection)
        exchange.retained = exchange
        connection.onRead = { [unowned exchange] bytes in exchange.received(bytes) }
        connection.onClose = { [unowned exchange] _ in exchange.retained = nil }
        connection.startReading()
    }

    private init(connection: StreamConnection) { self.connection = connection }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if upload != nil { return consumeUpload(bytes) }
        buffer.append(contentsOf: bytes)
        if !sawPreamble {
            switch ProxyProtocol.parse(buffer) {
            case .needMore: return
            case .invalid(let why): return respond(status: "400 Bad Request", body: "bad PROXY header: \(why)\n")
            case .absent: break
            case .header(let header, let length):
                caller = header.identity
                buffer.removeFirst(length)
            }
            sawPreamble = true
        }
        guard let end = buffer.firstRange(of: [13, 10, 13, 10]) else {
            if buffer.count > 64 * 1024 { respond(status: "431 Request Header Fields Too Large", body: "request head too large\n") }
            return
        }
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        connection.stopReading()
        let parts = head.split(separator: "\r\n").first?.split(separator: " ") ?? []
        if parts.count >= 2, parts[0] == "PUT", parts[1] == "/sha256" {
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)) }
            guard let length, length >= 0 else { return respond(status: "411 Length Required", body: "PUT /sha256 needs Content-Length\n") }
            print("request PUT /sha256 (\(length) bytes) from \(caller ?? "unknown")")
            fflush(nil)
            upload = SHA256()
            remaining = length
            let body = Array(buffer[end.upperBound...])
            buffer.removeAll()
            connection.startReading()
            return body.withUnsafeBytes { consumeUpload($0) }
        }
        guard parts.count >= 2, parts[0] == "GET" else { return respond(status: "405 Method Not Allowed", body: "only GET and PUT /sha256\n") }
        let target = String(parts[1])
        // One line per request (its path and verified caller): what reached the service, for its operator and for tests.
        print("request \(target.prefix(200)) from \(caller ?? "unknown")")
        fflush(nil)
        if target == "/" {
            respond(status: "200 OK", body: "Hello from the private service behind Portless.\ncaller: \(caller ?? "unknown (no PROXY header)")\n")
        } else if target.hasPrefix("/bytes?n="), let count = Int(target.dropFirst("/bytes?n=".count)), count >= 0 {
            remaining = count
            write("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(count)\r\nConnection: close\r\n\r\n")
            connection.onWritable = { [unowned self] in self.stream() }
            stream()
        } else if target == "/hold" {
            write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nholding\n")
            connection.startReading()
        } else {
            respond(status: "404 Not Found", body: "no such path\n")
        }
    }

    /// Hashes upload bytes as they come; answers with the digest once all have arrived.
    private func consumeUpload(_ bytes: UnsafeRawBufferPointer) {
        let taken = UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, remaining)])
        upload?.update(bufferPointer: taken)
        remaining -= taken.count
        guard remaining == 0, let digest = upload?.finalize() else { return }
        upload = nil
        connection.stopReading()
        respond(status: "200 OK", body: Hex.encode(digest) + "\n")
    }

    private func stream() {
        let block = DemoPayload.block
        block.withUnsafeBytes { bytes in
            while remaining > 0 && connection.queuedBytes <= TransportLimits.writeHighWaterMark {
                let count = min(remaining, bytes.count - offset)
                connection.write(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
                remaining -= count
                offset = (offset + count) % bytes.count
            }
        }
        if remaining == 0 {
            connection.onWritable = nil
            connection.closeAfterFlush()
        }
    }

    private func write(_ text: String) {
        Array(text.utf8).withUnsafeBytes { connection.write($0) }
    }

    private func respond(status: String, body: String) {
        write("HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        connection.closeAfterFlush()
    }
}
