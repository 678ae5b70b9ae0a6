import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Writes a gateway request's one response: whole (`json`, `writeResponse`) or streamed
/// (`writeHead`, then the body's parts). Each call is one trip to the connection's event loop,
/// which writes and flushes there; the call returns once the bytes are handed to the socket, so
/// a stream is paced by its reader.
public struct GatewayResponseWriter: Sendable {
    let channel: any Channel
    let state: GatewayHTTPHandler.ResponseState

    /// A response with its whole body.
    public func write(status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer) async throws {
        try await write(status: status, fields: Self.nio(headers), body: body)
    }

    /// One JSON response with its length.
    public func json(_ body: Data, status: HTTPResponse.Status = .ok, headers: HTTPFields = HTTPFields()) async throws {
        var fields = headers
        fields[.contentType] = "application/json"
        try await write(status: status, headers: fields, body: ByteBuffer(bytes: body))
    }

    /// One JSON response with its length and these extra fields (a pair whose name or value
    /// HTTP cannot carry is left out) — without building `HTTPFields` first.
    public func json(_ body: Data, status: HTTPResponse.Status = .ok, pairs: [(String, String)]) async throws {
        var fields = HTTPHeaders()
        fields.reserveCapacity(pairs.count + 2)
        for (name, value) in pairs where Self.carriable(name, value) { fields.add(name: name, value: value) }
        fields.add(name: "Content-Type", value: "application/json")
        try await write(status: status, fields: fields, body: ByteBuffer(bytes: body))
    }

    private func write(status: HTTPResponse.Status, fields: HTTPHeaders, body: ByteBuffer) async throws {
        var head = Self.head(status, fields)
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        try await send(body.readableBytes > 0 ? [.head(head), .body(.byteBuffer(body)), .end(nil)] : [.head(head), .end(nil)], ends: true)
    }

    private static func carriable(_ name: String, _ value: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }
            && value.utf8.allSatisfy { $0 != 0x0D && $0 != 0x0A && $0 != 0 }
    }

    /// A response without a body.
    public func writeResponse(_ response: HTTPResponse) async throws {
        try await write(status: response.status, headers: response.headerFields, body: ByteBuffer())
    }

    /// Starts a streamed response (chunked); its body follows through the returned writer.
    public func writeHead(_ response: HTTPResponse) async throws -> BodyWriter {
        try await send([.head(Self.head(response.status, Self.nio(response.headerFields)))], ends: false)
        return BodyWriter(writer: self)
    }

    public struct BodyWriter: Sendable {
        let writer: GatewayResponseWriter

        public func write(_ buffer: ByteBuffer) async throws {
            try await writer.send([.body(.byteBuffer(buffer))], ends: false)
        }

        public func finish(_ trailers: HTTPFields?) async throws {
            try await writer.send([.end(nil)], ends: true)
        }
    }

    /// Writes `parts` on the connection's loop; fails once the response is over or the
    /// connection is gone.
    private func send(_ parts: [HTTPServerResponsePart], ends: Bool) async throws {
        let state = self.state
        if channel.eventLoop.inEventLoop { return try await state.emit(parts, ends: ends).get() }
        try await channel.eventLoop.flatSubmit { state.emit(parts, ends: ends) }.get()
    }

    private static func nio(_ fields: HTTPFields) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 1)
        for field in fields { headers.add(name: field.name.rawName, value: field.value) }
        return headers
    }

    private static func head(_ status: HTTPResponse.Status, _ fields: HTTPHeaders) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase), headers: fields)
    }
}

extension HTTPFields {
    /// Fields from name/value pairs; names that are not valid HTTP field names are skipped.
    public init(pairs: [(String, String)]) {
        self.init()
        for (name, value) in pairs { if let field = HTTPField.Name(name) { self[field] = value } }
    }
}
