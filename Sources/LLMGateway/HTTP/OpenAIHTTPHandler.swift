import Foundation
import GatewayKit
import HTTPTypes
import HummingbirdCore
import NIOCore
import Shared

/// The OpenAI-compatible HTTP API: `POST /v1/chat/completions` (JSON or SSE), `GET /v1/models`,
/// `POST /v1/embeddings`. The caller is the identity the tunneler verified; an `Authorization`
/// header carries the token of the person an agent acts for, or an ignored placeholder (agents
/// hold no provider key). `X-Portless-Project` names the project a
/// request is billed to; `X-Portless-Route-Class` hints the routing class.
struct OpenAIHTTPHandler: Sendable {
    static let maxBody = 32 << 20
    let gateway: LLMGateway
    let callers: CallerRegistry

    private static let project = HTTPField.Name("X-Portless-Project")!
    private static let routeHint = HTTPField.Name("X-Portless-Route-Class")!

    func respond(_ request: Request, _ writer: consuming ResponseWriter, _ channel: any Channel) async throws {
        var request = request
        guard let agent = callers.caller(of: channel) else {
            return try await writer.apiError(APIError(status: 403, message: "no caller identity: this gateway is reached only through the Portless overlay",
                                                      type: "permission_error", code: nil))
        }
        // The person the agent acts for (`Authorization: Bearer <their token>`), verified before
        // anything else; a placeholder API key is not a token and names nobody.
        let caller: Caller
        switch await gateway.identify(agent, authorization: request.headers[.authorization]) {
        case .success(let identified): caller = identified
        case .failure(let error): return try await writer.apiError(error)
        }
        let path = request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
        switch (request.method, path) {
        case (.get, "/v1/models"), (.get, "/models"):
            try await writer.json(gateway.models(for: caller).encoded())
        case (.post, "/v1/chat/completions"), (.post, "/chat/completions"), (.post, "/v1/embeddings"), (.post, "/embeddings"):
            let body: ByteBuffer
            do { body = try await request.collectBody(upTo: Self.maxBody) } catch {
                return try await writer.apiError(APIError(status: 413, message: "request body over \(Self.maxBody >> 20) MiB", type: "invalid_request_error", code: nil))
            }
            let json: JSONValue
            do { json = try body.withUnsafeReadableBytes { try JSONParser.parse($0) } } catch {
                return try await writer.apiError(.invalid("the body is not valid JSON: \(error)", code: "invalid_json"))
            }
            guard json.objectValue != nil else {
                return try await writer.apiError(.invalid("the body must be a JSON object (see the OpenAI API reference for this endpoint)", code: "invalid_json"))
            }
            let project = request.headers[Self.project]
            let hint = request.headers[Self.routeHint]
            let gateway = self.gateway
            // A caller that goes away cancels its provider call (and stops a stream it no longer reads).
            let call = Task {
                path.hasSuffix("embeddings")
                    ? await gateway.embeddings(json, caller: caller, project: project)
                    : await gateway.chat(json, caller: caller, project: project, hint: hint)
            }
            callers.whenGone(channel) { call.cancel() }
            let reply = await withTaskCancellationHandler { await call.value } onCancel: { call.cancel() }
            try await writer.reply(reply)
        default:
            try await writer.apiError(APIError(status: 404, message: "no route \(request.method) \(path); this gateway serves /v1/chat/completions, /v1/embeddings and /v1/models",
                                               type: "invalid_request_error", code: "unknown_url"))
        }
    }
}

extension ResponseWriter {
    consuming func apiError(_ error: APIError) async throws {
        try await json(error.body.encoded(), status: HTTPResponse.Status(code: error.status))
    }

    consuming func reply(_ reply: ChatReply) async throws {
        switch reply {
        case .json(let value, let headers): try await json(value.encoded(), headers: HTTPFields(pairs: headers))
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
