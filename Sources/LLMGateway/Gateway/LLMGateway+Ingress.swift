import Foundation
import GatewayKit
import Shared

/// What the HTTP layer sends for the Responses and Messages APIs: a JSON body, a stream of typed
/// events (`event:` and `data:`), or an error body already in the API's own shape.
enum IngressReply: Sendable {
    case json(JSONValue, headers: [(String, String)])
    case events(AsyncThrowingStream<(String, JSONValue), Error>, headers: [(String, String)])
    case failure(status: Int, body: JSONValue)
}

// The Responses API and the Messages API, both over `chat` (one pipeline: policy, routing,
// budgets, guardrails, fallback, audit).
extension LLMGateway {
    // MARK: Responses

    func respond(_ request: JSONValue, caller: Caller, project: String?, hint: String?) async -> IngressReply {
        let failure = { (error: APIError) in IngressReply.failure(status: error.status, body: error.body) }
        var history: [JSONValue] = []
        if let previous = request["previous_response_id"]?.stringValue {
            guard let responses else { return failure(Self.storeUnavailable) }
            // Another party's response is indistinguishable from one that does not exist.
            guard let stored = try? await responses.load(id: previous, party: caller.partyKey) else {
                return failure(APIError(status: 404, message: "Previous response with id '\(previous.prefix(80))' not found.", type: "invalid_request_error",
                                        code: "previous_response_not_found"))
            }
            history = stored.items
        }
        let translated: (chat: JSONValue, input: [JSONValue])
        switch ResponsesAPI.chatRequest(request, history: history) {
        case .failure(let error): return failure(error)
        case .success(let value): translated = value
        }
        let id = ResponsesAPI.newID("resp")
        let created = Int(Date().timeIntervalSince1970)
        let store = request["store"]?.boolValue ?? true
        let model = request["model"]?.stringValue ?? ""
        let reply = await chat(translated.chat, caller: caller, project: project, hint: hint, ingress: .responses)
        switch reply {
        case .failure(let error):
            return failure(error)
        case .json(let completion, let headers):
            let output = ResponsesAPI.outputItems(of: completion)
            let response = ResponsesAPI.response(id: id, request: request, model: completion["model"]?.stringValue ?? model, created: created,
                                                 status: "completed", output: output, usage: ResponsesAPI.usage(completion["usage"]),
                                                 finish: ResponsesAPI.finishReason(of: completion))
            if store { await keep(id, caller: caller, response: response, items: history + translated.input + output) }
            return .json(response, headers: headers)
        case .stream(let chunks, let headers):
            let routed = headers.first { $0.0 == "x-portless-model" }?.1 ?? model
            let (events, continuation) = AsyncThrowingStream<(String, JSONValue), Error>.makeStream()
            let chat = translated.chat
            let conversation = history + translated.input
            let pump = Task { [weak self] in
                var translator = ResponsesStream(id: id, request: request, model: routed, created: created)
                for event in translator.start() { continuation.yield((event.type, event.data)) }
                do {
                    for try await chunk in chunks {
                        for event in translator.feed(chunk) { continuation.yield((event.type, event.data)) }
                    }
                    let estimate = ResponsesAPI.usage(TokenUsage.estimate(request: chat, output: translator.streamedText).openAI)
                    let finished = translator.finish(usage: estimate)
                    for event in finished { continuation.yield((event.type, event.data)) }
                    continuation.finish()
                    if store, let completed = finished.last?.data["response"] {
                        await self?.keep(id, caller: caller, response: completed, items: conversation + translator.output)
                    }
                } catch {
                    for event in translator.failed("the provider's stream broke: \(error)") { continuation.yield((event.type, event.data)) }
                    continuation.finish()
                }
            }
            continuation.onTermination = { termination in if case .cancelled = termination { pump.cancel() } }
            return .events(events, headers: headers)
        case .native, .nativeStream:
            return failure(APIError(status: 500, message: "a Responses request was answered in the Messages shape", type: "api_error", code: nil))
        }
    }

    private func keep(_ id: String, caller: Caller, response: JSONValue, items: [JSONValue]) async {
        do { try await responses?.save(id: id, party: caller.partyKey, response: response, items: items) } catch {
            logger.error("response not stored; previous_response_id will not find it", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// `GET /v1/responses/{id}`: only the party that made it may read it.
    func storedResponse(_ id: String, caller: Caller) async -> IngressReply {
        guard let responses else { return .failure(status: 503, body: Self.storeUnavailable.body) }
        guard let stored = try? await responses.load(id: id, party: caller.partyKey) else { return .failure(status: 404, body: Self.responseNotFound(id).body) }
        return .json(stored.response, headers: [])
    }

    /// `DELETE /v1/responses/{id}`.
    func deleteResponse(_ id: String, caller: Caller) async -> IngressReply {
        guard let responses else { return .failure(status: 503, body: Self.storeUnavailable.body) }
        guard (try? await responses.delete(id: id, party: caller.partyKey)) == true else { return .failure(status: 404, body: Self.responseNotFound(id).body) }
        return .json(.object(["id": .string(id), "object": .string("response.deleted"), "deleted": .bool(true)]), headers: [])
    }

    static func responseNotFound(_ id: String) -> APIError {
        APIError(status: 404, message: "No response found with id '\(id.prefix(80))'.", type: "invalid_request_error", code: "response_not_found")
    }

    static let storeUnavailable = APIError(status: 503, message: "this gateway cannot keep responses (its store did not open; see its log)",
                                           type: "service_unavailable", code: "store_unavailable")

    // MARK: Messages

    func messages(_ request: JSONValue, headers: [(String, String)], caller: Caller, project: String?, hint: String?) async -> IngressReply {
        let failure = { (error: APIError) in IngressReply.failure(status: error.status, body: MessagesAPI.error(error)) }
        let chatRequest: JSONValue
        switch MessagesAPI.chatRequest(request) {
        case .failure(let error): return failure(error)
        case .success(let value): chatRequest = value
        }
        let model = request["model"]?.stringValue ?? ""
        let reply = await chat(chatRequest, caller: caller, project: project, hint: hint, ingress: .messages,
                               native: NativeMessages(body: request, headers: headers))
        switch reply {
        case .failure(let error): return failure(error)
        case .native(let message, let headers): return .json(message, headers: headers)
        case .nativeStream(let events, let headers): return .events(events, headers: headers)
        case .json(let completion, let headers): return .json(MessagesAPI.message(from: completion, model: model), headers: headers)
        case .stream(let chunks, let headers):
            let (events, continuation) = AsyncThrowingStream<(String, JSONValue), Error>.makeStream()
            let pump = Task {
                var translator = MessagesStream(model: model)
                for event in translator.start(inputTokens: TokenEstimator.count(request: chatRequest)) { continuation.yield((event.type, event.data)) }
                do {
                    for try await chunk in chunks {
                        for event in translator.feed(chunk) { continuation.yield((event.type, event.data)) }
                    }
                    for event in translator.finish(outputTokens: TokenEstimator.count(translator.streamedText)) { continuation.yield((event.type, event.data)) }
                } catch {
                    for event in translator.failed("the provider's stream broke: \(error)") { continuation.yield((event.type, event.data)) }
                }
                continuation.finish()
            }
            continuation.onTermination = { termination in if case .cancelled = termination { pump.cancel() } }
            return .events(events, headers: headers)
        }
    }

    /// `POST /v1/messages/count_tokens`: the provider's own count for an Anthropic model, the
    /// gateway's estimate for any other (said in `x-portless-estimated`).
    func countTokens(_ request: JSONValue, headers: [(String, String)], caller: Caller) async -> IngressReply {
        let failure = { (error: APIError) in IngressReply.failure(status: error.status, body: MessagesAPI.error(error)) }
        await awaitView()
        let teams: [String]
        switch admit(caller, project: nil) { case .failure(let error): return failure(error); case .success(let value): teams = value }
        let name = request["model"]?.stringValue ?? ""
        let known = catalog[name] != nil || state.current.cascade?.aliasTable(name) != nil
        guard known, modelAccess(caller, teams: teams).permits(name) else { return failure(Self.modelNotFound(name)) }
        let chatForm: JSONValue
        switch MessagesAPI.chatRequest(request.setting("max_tokens", request["max_tokens"] ?? .number(1))) {
        case .failure(let error): return failure(error)
        case .success(let value): chatForm = value
        }
        if let (model, provider) = catalog[name], provider.type == .anthropic, let anthropic = adapters[provider.name] as? AnthropicAdapter {
            do {
                return .json(try await anthropic.countTokens(NativeMessages(body: request, headers: headers), model: model, deadline: .seconds(30)), headers: [])
            } catch {
                logger.warning("count_tokens by the provider failed; estimating", metadata: ["model": "\(name)", "error": "\(error)"])
            }
        }
        return .json(.object(["input_tokens": .number(TokenEstimator.count(request: chatForm))]), headers: [("x-portless-estimated", "true")])
    }
}
