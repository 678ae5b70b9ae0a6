import Foundation
import GatewayKit
import HTTPTypes
import NIOCore
import Shared

/// The APIs agents speak: OpenAI's `POST /v1/chat/completions` (JSON or SSE), `POST /v1/responses`
/// (and `GET`/`DELETE /v1/responses/{id}`), `GET /v1/models`, `POST /v1/embeddings`, and
/// Anthropic's `POST /v1/messages` and `/v1/messages/count_tokens`. The caller is the identity the
/// tunneler verified; an `Authorization` header carries the token of the person an agent acts
/// for, or an ignored placeholder (agents hold no provider key; Anthropic clients' `x-api-key`
/// is ignored too). `X-Portless-Project` names the project a request is billed to;
/// `X-Portless-Route-Class` hints the routing class. Errors come in each API's own shape.
struct OpenAIHTTPHandler: Sendable {
    static let maxBody = 32 << 20
    let gateway: LLMGateway
    let callers: CallerRegistry

    private static let project = HTTPField.Name("X-Portless-Project")!
    private static let routeHint = HTTPField.Name("X-Portless-Route-Class")!
    private static let traceparent = HTTPField.Name("traceparent")!
    private static let anthropicHeaders = ["anthropic-version", "anthropic-beta"]

    func respond(_ request: GatewayRequest, _ writer: GatewayResponseWriter, _ channel: any Channel) async throws {
        let path = request.path.hasSuffix("/") ? String(request.path.dropLast()) : request.path
        let anthropic = path.hasPrefix("/v1/messages") || path.hasPrefix("/messages")
        guard let agent = callers.caller(of: channel) else {
            let error = APIError(status: 403, message: "no caller identity: this gateway is reached only through the Portless overlay", type: "permission_error", code: nil)
            return try await anthropic ? writer.json(MessagesAPI.error(error).encoded(), status: .forbidden) : writer.apiError(error)
        }
        // The person the agent acts for (`Authorization: Bearer <their token>`), verified before
        // anything else; a placeholder API key is not a token and names nobody.
        let caller: Caller
        switch await gateway.identify(agent, authorization: request.headers[.authorization]) {
        case .success(let identified): caller = identified
        case .failure(let error):
            return try await anthropic ? writer.json(MessagesAPI.error(error).encoded(), status: HTTPResponse.Status(code: error.status)) : writer.apiError(error)
        }
        let parent = request.headers[Self.traceparent].flatMap(TraceContext.init(traceparent:))
        // Without a caller's trace or a collector there is no span: nothing to name or attribute.
        guard parent != nil || Tracing.exporter != nil else {
            return try await route(request, path: path, anthropic: anthropic, caller: caller, writer: writer, channel: channel)
        }
        try await Tracing.withSpan("llm \(request.method) \(path)", parent: parent,
                                   attributes: [("portless.service", gateway.service), ("portless.identity", caller.identity),
                                                ("http.request.method", "\(request.method)"), ("url.path", path)]) { _ in
            try await route(request, path: path, anthropic: anthropic, caller: caller, writer: writer, channel: channel)
        }
    }

    private func route(_ request: GatewayRequest, path: String, anthropic: Bool, caller: Caller, writer: GatewayResponseWriter,
                       channel: any Channel) async throws {
        let project = request.headers[Self.project]
        let hint = request.headers[Self.routeHint]
        let gateway = self.gateway
        switch (request.method, path) {
        case (.get, "/v1/models"), (.get, "/models"):
            try await writer.json(gateway.models(for: caller).encoded())
        case (.get, _) where path.hasPrefix("/v1/responses/"):
            try await writer.ingress(await gateway.storedResponse(String(path.dropFirst("/v1/responses/".count)), caller: caller))
        case (.delete, _) where path.hasPrefix("/v1/responses/"):
            try await writer.ingress(await gateway.deleteResponse(String(path.dropFirst("/v1/responses/".count)), caller: caller))
        case (.post, "/v1/chat/completions"), (.post, "/chat/completions"), (.post, "/v1/embeddings"), (.post, "/embeddings"),
             (.post, "/v1/responses"), (.post, "/responses"), (.post, "/v1/messages"), (.post, "/messages"),
             (.post, "/v1/messages/count_tokens"), (.post, "/messages/count_tokens"):
            let json: JSONValue
            switch Self.body(request) {
            case .failure(let error):
                return try await anthropic ? writer.json(MessagesAPI.error(error).encoded(), status: HTTPResponse.Status(code: error.status)) : writer.apiError(error)
            case .success(let value): json = value
            }
            let native = Self.anthropicHeaders.compactMap { name in request.headers[HTTPField.Name(name)!].map { (name, $0) } }
            if path.hasSuffix("count_tokens") {
                return try await writer.ingress(gateway.countTokens(json, headers: native, caller: caller))
            }
            if path.hasSuffix("responses") || path.hasSuffix("messages") {
                // A caller that goes away cancels its provider call (and stops a stream it no longer reads).
                let reply = await callers.abandoningIfGone(channel) {
                    path.hasSuffix("responses")
                        ? await gateway.respond(json, caller: caller, project: project, hint: hint)
                        : await gateway.messages(json, headers: native, caller: caller, project: project, hint: hint)
                }
                return try await writer.ingress(reply)
            }
            let reply = await callers.abandoningIfGone(channel) {
                path.hasSuffix("embeddings")
                    ? await gateway.embeddings(json, caller: caller, project: project)
                    : await gateway.chat(json, caller: caller, project: project, hint: hint)
            }
            try await writer.reply(reply)
        default:
            let error = APIError(status: 404, message: "no route \(request.method) \(path); this gateway serves /v1/chat/completions, /v1/responses, /v1/messages, /v1/messages/count_tokens, /v1/embeddings and /v1/models",
                                 type: "invalid_request_error", code: "unknown_url")
            try await anthropic ? writer.json(MessagesAPI.error(error).encoded(), status: .notFound) : writer.apiError(error)
        }
    }

    /// The request body as a JSON object, or why not.
    private static func body(_ request: GatewayRequest) -> Result<JSONValue, APIError> {
        let body: ByteBuffer
        do { body = try request.collectBody(upTo: maxBody) } catch {
            return .failure(APIError(status: 413, message: "request body over \(maxBody >> 20) MiB", type: "invalid_request_error", code: nil))
        }
        let json: JSONValue
        do { json = try body.withUnsafeReadableBytes { try JSONParser.parse($0) } } catch {
            return .failure(.invalid("the body is not valid JSON: \(error)", code: "invalid_json"))
        }
        guard json.objectValue != nil else {
            return .failure(.invalid("the body must be a JSON object (see the API reference for this endpoint)", code: "invalid_json"))
        }
        return .success(json)
    }
}

extension GatewayResponseWriter {
    func apiError(_ error: APIError) async throws {
        try await json(error.body.encoded(), status: HTTPResponse.Status(code: error.status))
    }

    func ingress(_ reply: IngressReply) async throws {
        switch reply {
        case .json(let value, let headers): try await json(value.encoded(), pairs: headers)
        case .failure(let status, let body): try await json(body.encoded(), status: HTTPResponse.Status(code: status))
        case .events(let events, let headers):
            var fields = HTTPFields(pairs: headers)
            fields[.contentType] = "text/event-stream"
            fields[.cacheControl] = "no-cache"
            var body = try await writeHead(HTTPResponse(status: .ok, headerFields: fields))
            do {
                for try await (type, data) in events {
                    var buffer = ByteBuffer()
                    buffer.writeString("event: \(type)\ndata: ")
                    buffer.writeBytes(data.encoded())
                    buffer.writeString("\n\n")
                    try await body.write(buffer)
                }
            } catch {
                // A stream that broke after it started ends with an error event, not silently.
                var buffer = ByteBuffer()
                let failure: JSONValue = .object(["type": .string("error"), "error": .object(["type": .string("api_error"),
                                                                                              "message": .string("the provider's stream broke: \(error)")])])
                buffer.writeString("event: error\ndata: ")
                buffer.writeBytes(failure.encoded())
                buffer.writeString("\n\n")
                try await body.write(buffer)
            }
            try await body.finish(nil)
        }
    }

    func reply(_ reply: ChatReply) async throws {
        switch reply {
        case .json(let value, let headers), .native(let value, let headers): try await json(value.encoded(), pairs: headers)
        case .nativeStream(let events, let headers): try await ingress(.events(events, headers: headers))
        case .failure(let error): try await apiError(error)
        case .stream(let chunks, let headers):
            var fields = HTTPFields(pairs: headers)
            fields[.contentType] = "text/event-stream"
            fields[.cacheControl] = "no-cache"
            var body = try await writeHead(HTTPResponse(status: .ok, headerFields: fields))
            do {
                for try await chunk in chunks {
                    var buffer = ByteBuffer()
                    buffer.writeString("data: ")
                    buffer.writeBytes(chunk.encoded())
                    buffer.writeString("\n\n")
                    try await body.write(buffer)
                }
            } catch {
                // The stream broke after it started: the client gets an error event, not a silent end.
                let failure = APIError(status: 502, message: "the provider's stream broke: \(error)", type: "api_error", code: "stream_interrupted")
                var buffer = ByteBuffer()
                buffer.writeString("data: ")
                buffer.writeBytes(failure.body.encoded())
                buffer.writeString("\n\n")
                try await body.write(buffer)
            }
            var done = ByteBuffer()
            done.writeString("data: [DONE]\n\n")
            try await body.write(done)
            try await body.finish(nil)
        }
    }
}
