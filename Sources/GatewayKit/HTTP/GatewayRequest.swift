import HTTPTypes
import NIOCore
import NIOHTTP1

/// One request to a gateway, read whole before it is answered (bodies are small JSON; a body
/// over the server's limit is not kept, and `collectBody` says so).
public struct GatewayRequest: Sendable {
    public let method: HTTPRequest.Method
    /// The path, without the query.
    public let path: String
    public let headers: GatewayHeaders
    let body: ByteBuffer?
    let bodyOverLimit: Bool

    init(head: HTTPRequestHead, body: ByteBuffer?, bodyOverLimit: Bool) {
        method = HTTPRequest.Method(head.method.rawValue) ?? .get
        let uri = head.uri
        path = uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
        headers = GatewayHeaders(head.headers)
        self.body = body
        self.bodyOverLimit = bodyOverLimit
    }

    public struct BodyTooLarge: Error, Sendable {}

    /// The body, or `BodyTooLarge` when it holds more than `limit` bytes (or more than the
    /// server kept).
    public func collectBody(upTo limit: Int) throws -> ByteBuffer {
        if bodyOverLimit || (body?.readableBytes ?? 0) > limit { throw BodyTooLarge() }
        return body ?? ByteBuffer()
    }
}

/// A request's header fields, looked up by name (case-insensitively, as HTTP says).
public struct GatewayHeaders: Sendable {
    private let fields: HTTPHeaders

    init(_ fields: HTTPHeaders) { self.fields = fields }

    public subscript(name: HTTPField.Name) -> String? { fields.first(name: name.canonicalName) }
}
