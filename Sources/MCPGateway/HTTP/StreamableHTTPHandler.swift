import Foundation
import HTTPTypes
import NIOCore
import GatewayKit
import Shared

/// MCP's Streamable HTTP transport, both generations, in front of `MCPGateway`:
/// - 2025-06-18 and 2025-11-25: `initialize` opens a session named by `Mcp-Session-Id`; a POST
///   is answered with JSON, or with SSE once something must precede the result (progress, a
///   log message, a request of an upstream for the caller); GET is the session's stream of
///   server messages; DELETE ends it. The caller's answers to relayed requests come back as
///   POSTed responses.
/// - 2026-07-28: every POST stands alone, its `_meta` carrying the protocol version and client
///   capabilities, mirrored in `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers;
///   `server/discover` describes the server and `subscriptions/listen` is the stream.
/// A caller that goes away cancels what it asked for, upstream too.
struct StreamableHTTPHandler: Sendable {
    static let maxBody = 4 << 20
    let gateway: MCPGateway
    let callers: CallerRegistry
    let allowedOrigins: [String]

    private static let sessionHeader = HTTPField.Name("Mcp-Session-Id")!
    private static let traceparentHeader = HTTPField.Name("traceparent")!
    private static let versionHeader = HTTPField.Name("MCP-Protocol-Version")!
    private static let methodHeader = HTTPField.Name("Mcp-Method")!
    private static let nameHeader = HTTPField.Name("Mcp-Name")!
    private static let nameBearing = ["tools/call": "name", "prompts/get": "name", "resources/read": "uri"]

    func respond(_ request: GatewayRequest, _ writer: GatewayResponseWriter, _ channel: any Channel) async throws {
        guard let agent = callers.caller(of: channel) else {
            return try await writer.error(.forbidden, RPCError(code: JSONRPC.invalidRequest,
                message: "no caller identity: this gateway is reached only through the Portless overlay"))
        }
        if let origin = request.headers[.origin], !originAllowed(origin) {
            return try await writer.error(.forbidden, RPCError(code: JSONRPC.invalidRequest, message: "Origin '\(origin)' is not allowed"))
        }
        // The person the agent acts for, verified here before anything else is read.
        let caller: Caller
        switch await gateway.identify(agent, authorization: request.headers[.authorization]) {
        case .success(let identified): caller = identified
        case .failure(let refusal):
            var fields = HTTPFields()
            if refusal.status == 401 {
                fields[.wwwAuthenticate] = "Bearer error=\"invalid_token\", error_description=\"\(refusal.description.replacingOccurrences(of: "\"", with: "'"))\""
            }
            return try await writer.json(JSONRPC.response(id: .null, error: RPCError(code: JSONRPC.invalidRequest, message: refusal.description)).encoded(),
                                         status: HTTPResponse.Status(code: refusal.status), headers: fields)
        }
        switch request.method {
        case .post:
            let body: ByteBuffer
            do { body = try request.collectBody(upTo: Self.maxBody) } catch {
                return try await writer.error(.contentTooLarge, RPCError(code: JSONRPC.invalidRequest, message: "request body over \(Self.maxBody >> 20) MiB"))
            }
            try await post(request, body: body, caller: caller, channel: channel, writer: writer)
        case .get:
            guard let id = request.headers[Self.sessionHeader] else {
                return try await writer.error(.methodNotAllowed, RPCError(code: JSONRPC.invalidRequest,
                    message: "GET needs an Mcp-Session-Id (2025-11-25); with 2026-07-28 use subscriptions/listen"))
            }
            guard let session = await gateway.session(id), session.caller.isSameParty(as: caller),
                  let stream = await gateway.attachStream(session: id) else {
                return try await writer.error(.notFound, RPCError(code: JSONRPC.invalidRequest, message: "session not found: initialize again"))
            }
            try await writer.sse(stream)
        case .delete:
            guard let id = request.headers[Self.sessionHeader], await gateway.closeSession(id, caller: caller) else {
                return try await writer.error(.notFound, RPCError(code: JSONRPC.invalidRequest, message: "session not found"))
            }
            try await writer.writeResponse(HTTPResponse(status: .ok))
        default:
            try await writer.error(.methodNotAllowed, RPCError(code: JSONRPC.invalidRequest, message: "use POST, GET or DELETE"))
        }
    }

    private func originAllowed(_ origin: String) -> Bool {
        guard let host = URL(string: origin)?.host else { return false }
        return ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host) || allowedOrigins.contains(origin)
    }

    private func post(_ request: GatewayRequest, body: ByteBuffer, caller: Caller, channel: any Channel, writer: GatewayResponseWriter) async throws {
        let value: JSONValue
        do { value = try body.withUnsafeReadableBytes { try JSONParser.parse($0) } } catch {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.parseError, message: "Parse error: \(error)"))
        }
        if value.arrayValue != nil {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.invalidRequest, message: "JSON-RPC batches are not supported; send one message per POST"))
        }
        let message: JSONRPC.Message
        do { message = try JSONRPC.Message(value) } catch let error as RPCError {
            return try await writer.error(.badRequest, error, id: value["id"] ?? .null)
        }
        let headers = request.headers
        let meta = paramsOf(message)?["_meta"]
        let modern = headers[Self.sessionHeader] == nil
            && (meta?["io.modelcontextprotocol/protocolVersion"] != nil || headers[Self.versionHeader].map(MCPGateway.modernVersions.contains) == true)
        let canStream = (headers[.accept] ?? "").contains("text/event-stream")
        if modern { return try await modernPost(message, headers: headers, caller: caller, canStream: canStream, channel: channel, writer: writer) }

        if case .request(let id, "initialize", let params) = message {
            let opened = await gateway.openSession(caller: caller, requestedVersion: params?["protocolVersion"]?.stringValue,
                                                   capabilities: params?["capabilities"] ?? .object([:]))
            switch opened {
            case .failure(let error):
                return try await writer.error(.tooManyRequests, error, id: id)
            case .success(let (session, version)):
                let result: JSONValue = .object([
                    "protocolVersion": .string(version),
                    "capabilities": await gateway.capabilities(),
                    "serverInfo": MCPGateway.serverInfo,
                    "instructions": .string(await gateway.instructions),
                ])
                var fields = HTTPFields()
                fields[Self.sessionHeader] = session
                return try await writer.json(JSONRPC.response(id: id, result: result).encoded(), headers: fields)
            }
        }
        guard let sessionID = headers[Self.sessionHeader] else {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.invalidRequest,
                message: "Bad Request: no Mcp-Session-Id; send initialize first (2025-11-25) or put the protocol version in params._meta (2026-07-28)"))
        }
        guard let session = await gateway.session(sessionID), session.caller.isSameParty(as: caller) else {
            return try await writer.error(.notFound, RPCError(code: JSONRPC.invalidRequest, message: "session not found: initialize again"))
        }
        if let version = headers[Self.versionHeader], !MCPGateway.handshakeVersions.contains(version) {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.invalidRequest,
                message: "unsupported MCP-Protocol-Version '\(version)'; this session speaks \(session.protocolVersion)"))
        }
        switch message {
        case .notification(let method, let params):
            if method == "notifications/cancelled", let requestID = params?["requestId"] {
                await gateway.cancel(session: sessionID, request: requestID)
            }
            try await writer.writeResponse(HTTPResponse(status: .accepted))
        case .response(let id, let result):
            gateway.callerRequests.answered(session: sessionID, id: id, result: .success(result))
            try await writer.writeResponse(HTTPResponse(status: .accepted))
        case .error(let id, let error):
            gateway.callerRequests.answered(session: sessionID, id: id, result: .failure(error))
            try await writer.writeResponse(HTTPResponse(status: .accepted))
        case .request(let id, let method, let params):
            let downstream = Downstream(caller: caller, session: sessionID, modern: false, capabilities: session.capabilities,
                                        logLevel: session.logLevel, exchange: DownstreamExchange(canStream: canStream))
            try await answer(id: id, method: method, params: params, downstream: downstream, channel: channel,
                             traceparent: headers[Self.traceparentHeader], writer: writer)
        }
    }

    private func modernPost(_ message: JSONRPC.Message, headers: GatewayHeaders, caller: Caller, canStream: Bool, channel: any Channel,
                            writer: GatewayResponseWriter) async throws {
        let id: JSONValue
        let method: String
        let params: JSONValue?
        switch message {
        case .notification, .response, .error:
            return try await writer.writeResponse(HTTPResponse(status: .accepted))
        case .request(let requestID, let name, let requestParams):
            id = requestID; method = name; params = requestParams
        }
        let meta = params?["_meta"]
        guard let version = meta?["io.modelcontextprotocol/protocolVersion"], meta?["io.modelcontextprotocol/clientCapabilities"] != nil else {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.invalidParams,
                message: "params._meta needs io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities"), id: id)
        }
        if headers[Self.versionHeader] != version.stringValue || headers[Self.methodHeader] != method {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.headerMismatch,
                message: "MCP-Protocol-Version and Mcp-Method headers must equal the body's protocol version and method"), id: id)
        }
        if let key = Self.nameBearing[method], headers[Self.nameHeader] != params?[key]?.stringValue {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.headerMismatch, message: "Mcp-Name header must equal params.\(key)"), id: id)
        }
        guard let versionText = version.stringValue else {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.invalidParams, message: "the protocol version must be a string"), id: id)
        }
        guard MCPGateway.modernVersions.contains(versionText) else {
            return try await writer.error(.badRequest, RPCError(code: JSONRPC.unsupportedProtocolVersion, message: "Unsupported protocol version",
                data: .object(["supported": .array(MCPGateway.modernVersions.map { .string($0) }), "requested": .string(versionText)])), id: id)
        }
        switch method {
        case "server/discover":
            let result: JSONValue = .object([
                "supportedVersions": .array((MCPGateway.handshakeVersions + MCPGateway.modernVersions).map { .string($0) }),
                "capabilities": await gateway.capabilities(),
                "instructions": .string(await gateway.instructions),
                "ttlMs": .number(0),
                "cacheScope": .string("private"),
                "resultType": .string("complete"),
                "_meta": .object(["io.modelcontextprotocol/serverInfo": MCPGateway.serverInfo]),
            ])
            try await writer.json(JSONRPC.response(id: id, result: result).encoded())
        case "subscriptions/listen":
            let stream = await gateway.listen(caller: caller, subscriptionID: id, filter: params?["notifications"])
            try await writer.sse(stream)
        default:
            let level = meta?["io.modelcontextprotocol/logLevel"]?.stringValue.flatMap(LogLevel.init(rawValue:))
            let downstream = Downstream(caller: caller, session: nil, modern: true, capabilities: meta?["io.modelcontextprotocol/clientCapabilities"] ?? .object([:]),
                                        logLevel: level, exchange: DownstreamExchange(canStream: canStream))
            try await answer(id: id, method: method, params: params, downstream: downstream, channel: channel,
                             traceparent: headers[Self.traceparentHeader], writer: writer)
        }
    }

    /// Runs the request while the response is written; the caller going away (its connection
    /// closes, or it cancels) cancels the request.
    /// The request is a span: the child of the caller's `params._meta.traceparent`, else of its
    /// `traceparent` header.
    private func answer(id: JSONValue, method: String, params: JSONValue?, downstream: Downstream, channel: any Channel,
                        traceparent: String?, writer: GatewayResponseWriter) async throws {
        let parent = (params?["_meta"]?["traceparent"]?.stringValue ?? traceparent).flatMap(TraceContext.init(traceparent:))
        var attributes = [("portless.service", gateway.service), ("portless.identity", downstream.caller.identity), ("rpc.method", method)]
        if let name = params?["name"]?.stringValue, method == "tools/call" || method == "prompts/get" { attributes.append(("mcp.name", name)) }
        guard parent != nil || Tracing.exporter != nil else {
            return try await answerInSpan(id: id, method: method, params: params, downstream: downstream, channel: channel, writer: writer)
        }
        try await Tracing.withSpan("mcp \(method)", parent: parent, attributes: attributes) { _ in
            try await answerInSpan(id: id, method: method, params: params, downstream: downstream, channel: channel, writer: writer)
        }
    }

    private func answerInSpan(id: JSONValue, method: String, params: JSONValue?, downstream: Downstream, channel: any Channel,
                              writer: GatewayResponseWriter) async throws {
        let gateway = self.gateway
        guard let exchange = downstream.exchange else { return }
        let task = Task {
            let reply = await gateway.handle(method: method, params: params, downstream: downstream)
            var status = HTTPResponse.Status.ok
            if downstream.modern, case .error(let error) = reply { status = Self.status(for: error) }
            exchange.finish(Self.envelope(reply, id: id), status: status)
        }
        if let session = downstream.session { await gateway.track(session: session, request: id, cancel: { task.cancel() }) }
        let departure = callers.whenGone(channel) { task.cancel() }
        defer {
            callers.forget(departure)
            task.cancel()
            if let session = downstream.session { Task { await gateway.untrack(session: session, request: id) } }
        }
        try await writer.respond(exchange)
    }

    private func paramsOf(_ message: JSONRPC.Message) -> JSONValue? {
        switch message {
        case .request(_, _, let params), .notification(_, let params): return params
        default: return nil
        }
    }

    /// A whole JSON-RPC response for `reply`, splicing a pre-encoded result in without re-encoding.
    static func envelope(_ reply: MCPGateway.Reply, id: JSONValue) -> Data {
        switch reply {
        case .value(let result): return JSONRPC.response(id: id, result: result).encoded()
        case .error(let error): return JSONRPC.response(id: id, error: error).encoded()
        case .encoded(let result):
            var data = Data("{\"jsonrpc\":\"2.0\",\"id\":".utf8)
            data.append(id.encoded())
            data.append(contentsOf: Array(",\"result\":".utf8))
            data.append(result)
            data.append(UInt8(ascii: "}"))
            return data
        }
    }

    static func status(for error: RPCError) -> HTTPResponse.Status {
        switch error.code {
        case JSONRPC.parseError, JSONRPC.invalidRequest, JSONRPC.invalidParams, JSONRPC.headerMismatch, JSONRPC.unsupportedProtocolVersion: return .badRequest
        case JSONRPC.methodNotFound: return .notFound
        default: return .ok
        }
    }
}

extension GatewayResponseWriter {
    func error(_ status: HTTPResponse.Status, _ error: RPCError, id: JSONValue = .null) async throws {
        try await json(JSONRPC.response(id: id, error: error).encoded(), status: status)
    }
}
