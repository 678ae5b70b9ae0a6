import Foundation
import Logging
import Prometheus

/// Serves `GET /metrics` in the Prometheus text format on its own address (loopback unless the
/// operator chooses otherwise). Loop-confined. A request must arrive whole within 10 s and
/// 8 KiB; anything else gets an HTTP error and the connection closes.
public final class MetricsListener {
    public let localAddress: SocketAddress
    private let listener: TCPListener
    /// Runs on the loop just before each scrape: where gauges read from live state are set.
    public var onScrape: (() -> Void)?

    static let maxRequestBytes = 8 << 10
    static let requestTimeoutMs: UInt64 = 10_000

    public init(loop: EventLoop, address: SocketAddress, registry: PrometheusCollectorRegistry = Metrics.registry, logger: Logger) throws {
        var serve: ((StreamConnection) -> Void)?
        listener = try TCPListener(loop: loop, address: address) { serve?($0) }
        localAddress = listener.localAddress
        serve = { [weak self] connection in self?.serve(connection, registry: registry) }
        logger.info("metrics listening", metadata: ["address": "\(localAddress)", "path": "/metrics"])
    }

    public func close() { listener.close() }

    private func serve(_ connection: StreamConnection, registry: PrometheusCollectorRegistry) {
        var request: [UInt8] = []
        let deadline = LoopTimer(loop: connection.loop)
        deadline.start(after: Self.requestTimeoutMs) { [unowned connection] in
            Self.respond(connection, status: "408 Request Timeout", body: Array("no complete request within 10 s\n".utf8))
        }
        connection.onClose = { _ in deadline.close() }
        connection.onEndOfStream = { [unowned connection] in connection.close() }
        connection.onRead = { [weak self, unowned connection] bytes in
            request.append(contentsOf: bytes)
            guard let end = Self.headerEnd(request) else {
                if request.count > Self.maxRequestBytes {
                    Self.respond(connection, status: "431 Request Header Fields Too Large", body: Array("request over 8 KiB\n".utf8))
                }
                return
            }
            connection.stopReading()
            let line = String(decoding: request[..<(request.firstIndex(of: UInt8(ascii: "\r")) ?? end)], as: UTF8.self)
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
                return Self.respond(connection, status: "400 Bad Request", body: Array("not an HTTP/1.x request\n".utf8))
            }
            guard parts[0] == "GET" || parts[0] == "HEAD" else {
                return Self.respond(connection, status: "405 Method Not Allowed", body: Array("only GET /metrics\n".utf8), extra: "Allow: GET, HEAD\r\n")
            }
            guard parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?") else {
                return Self.respond(connection, status: "404 Not Found", body: Array("metrics are at /metrics\n".utf8))
            }
            self?.onScrape?()
            var body: [UInt8] = []
            registry.emit(into: &body)
            Self.respond(connection, status: "200 OK", body: body, contentType: "text/plain; version=0.0.4; charset=utf-8",
                         headOnly: parts[0] == "HEAD")
        }
        connection.startReading()
    }

    private static func headerEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    private static func respond(_ connection: StreamConnection, status: String, body: [UInt8],
                                contentType: String = "text/plain; charset=utf-8", extra: String = "", headOnly: Bool = false) {
        guard !connection.isClosed else { return }
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\(extra)Connection: close\r\n\r\n"
        Array(head.utf8).withUnsafeBytes { connection.write($0) }
        if !headOnly { body.withUnsafeBytes { connection.write($0) } }
        connection.closeAfterFlush()
    }
}
