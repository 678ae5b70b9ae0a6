import Foundation
import GatewayKit
import Shared

/// Anthropic's Messages API: system prompt apart, content blocks, `tool_use`/`tool_result`,
/// the stream's event sequence (message_start … message_stop), `anthropic-version`.
struct AnthropicAdapter: ProviderAdapter {
    let config: ProviderConfig
    private var http: ProviderHTTP { ProviderHTTP(provider: config.name) }

    private func call(_ request: JSONValue, model: ModelConfig, stream: Bool) throws -> (String, [(String, String)], Data) {
        var headers = [("anthropic-version", config.anthropicVersion ?? "2023-06-01")]
        if let key = try config.apiKey() { headers.append(("x-api-key", key)) }
        let url = "\((config.baseURL ?? "https://api.anthropic.com").trimmingTrailingSlash)/v1/messages"
        return (url, headers, Self.translate(request, model: model, stream: stream).encoded())
    }

    func unsupported(_ request: JSONValue, model: ModelConfig) -> String? {
        if let common = ChatParameters.common(request, provider: "anthropic", supportsSeed: false) { return common }
        if request["reasoning_effort"]?.stringValue != nil, let temperature = request["temperature"]?.numberValue, temperature != 1 {
            return "anthropic takes no temperature other than 1 with extended thinking (reasoning_effort)"
        }
        return nil
    }

    /// The most a Claude model can write: the configured `max_output_tokens`, else its published
    /// maximum — what a caller that sets no limit gets (never a silent 1,024).
    static func maxOutputTokens(_ model: ModelConfig) -> Int {
        if let configured = model.maxOutputTokens { return configured }
        let id = model.upstreamID
        let published: [(String, Int)] = [("claude-opus-4-1", 32_000), ("claude-opus-4", 32_000), ("claude-sonnet-4", 64_000), ("claude-haiku-4", 64_000),
                                          ("claude-3-7-sonnet", 64_000), ("claude-3-5-haiku", 8_192), ("claude-3-5-sonnet", 8_192), ("claude-3-haiku", 4_096),
                                          ("claude-3-opus", 4_096)]
        return published.first { id.hasPrefix($0.0) }?.1 ?? 32_000
    }

    // MARK: pass-through (the Messages API to an Anthropic model)

    private func nativeCall(_ native: NativeMessages, model: ModelConfig, path: String, stream: Bool?) throws -> (String, [(String, String)], Data) {
        var headers = [("anthropic-version", native.headers.first { $0.0.lowercased() == "anthropic-version" }?.1 ?? config.anthropicVersion ?? "2023-06-01")]
        headers += native.headers.filter { $0.0.lowercased() == "anthropic-beta" }
        if let key = try config.apiKey() { headers.append(("x-api-key", key)) }
        var body = native.body.setting("model", .string(model.upstreamID))
        if let stream { body = body.setting("stream", stream ? .bool(true) : nil) }
        return ("\((config.baseURL ?? "https://api.anthropic.com").trimmingTrailingSlash)\(path)", headers, body.encoded())
    }

    /// The caller's Messages request, sent as it was (only the model id set to this provider's).
    func passThrough(_ native: NativeMessages, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let (url, headers, body) = try nativeCall(native, model: model, path: "/v1/messages", stream: false)
        return try await http.json(http.request(url, headers: headers, body: body), deadline: deadline)
    }

    /// The same, streamed: the provider's events as they come, (type, data).
    func passThroughStream(_ native: NativeMessages, model: ModelConfig, deadline: Duration) async throws -> AsyncThrowingStream<(String, JSONValue), Error> {
        let (url, headers, body) = try nativeCall(native, model: model, path: "/v1/messages", stream: true)
        let response = try await http.send(http.request(url, headers: headers, body: body), deadline: deadline)
        let events = response.body.serverSentEvents()
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in events {
                        let data = try JSONValue.parse(event)
                        if data["type"]?.stringValue == "error" {
                            throw ProviderError.http(status: 529, message: data["error"]?["message"]?.stringValue ?? "Anthropic stream error")
                        }
                        continuation.yield((data["type"]?.stringValue ?? "message", data))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// `count_tokens` by the provider itself.
    func countTokens(_ native: NativeMessages, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        var request = native
        request = NativeMessages(body: native.body.setting("max_tokens", nil).setting("stream", nil), headers: native.headers)
        let (url, headers, body) = try nativeCall(request, model: model, path: "/v1/messages/count_tokens", stream: nil)
        return try await http.json(http.request(url, headers: headers, body: body), deadline: deadline)
    }

    func complete(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let (url, headers, body) = try call(request, model: model, stream: false)
        return Self.chatCompletion(try await http.json(http.request(url, headers: headers, body: body), deadline: deadline), model: model.name)
    }

    func stream(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> AsyncThrowingStream<JSONValue, Error> {
        let (url, headers, body) = try call(request, model: model, stream: true)
        let response = try await http.send(http.request(url, headers: headers, body: body), deadline: deadline)
        let events = response.body.serverSentEvents()
        return AsyncThrowingStream { continuation in
            let task = Task {
                var translator = StreamTranslator(model: model.name)
                do {
                    for try await event in events {
                        for chunk in try translator.translate(try JSONValue.parse(event)) { continuation.yield(chunk) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: requests

    static func translate(_ request: JSONValue, model: ModelConfig, stream: Bool) -> JSONValue {
        var system: [String] = []
        var messages: [JSONValue] = []
        func append(role: String, blocks: [JSONValue]) {
            // Anthropic wants alternating roles: consecutive same-role messages are merged.
            if let last = messages.last, last["role"]?.stringValue == role, case .array(let existing)? = last["content"] {
                messages[messages.count - 1] = last.setting("content", .array(existing + blocks))
            } else {
                messages.append(.object(["role": .string(role), "content": .array(blocks)]))
            }
        }
        for message in request["messages"]?.arrayValue ?? [] {
            switch message["role"]?.stringValue ?? "user" {
            case "system", "developer":
                system.append(ChatText.content(message))
            case "assistant":
                var blocks: [JSONValue] = []
                let text = ChatText.content(message)
                if !text.isEmpty { blocks.append(.object(["type": .string("text"), "text": .string(text)])) }
                for call in message["tool_calls"]?.arrayValue ?? [] {
                    let arguments = call["function"]?["arguments"]?.stringValue.flatMap { try? JSONValue.parse(Data($0.utf8)) } ?? .object([:])
                    blocks.append(.object(["type": .string("tool_use"), "id": call["id"] ?? .string("call"),
                                           "name": call["function"]?["name"] ?? .string(""), "input": arguments]))
                }
                append(role: "assistant", blocks: blocks)
            case "tool":
                append(role: "user", blocks: [.object(["type": .string("tool_result"), "tool_use_id": message["tool_call_id"] ?? .string(""),
                                                       "content": .string(ChatText.content(message))])])
            default:
                append(role: "user", blocks: userBlocks(message))
            }
        }
        if request["response_format"]?["type"]?.stringValue == "json_object" {
            system.append("Answer with one JSON object and nothing else.")
        }
        var body: [String: JSONValue] = [
            "model": .string(model.upstreamID),
            "messages": .array(messages),
            "max_tokens": request["max_completion_tokens"] ?? request["max_tokens"] ?? .number(maxOutputTokens(model)),
        ]
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        for key in ["temperature", "top_p", "top_k"] { if let value = request[key] { body[key] = value } }
        if let budget = ChatParameters.thinkingBudget(request["reasoning_effort"]?.stringValue) {
            // Thinking counts against max_tokens: the budget must fit under it.
            let limit = body["max_tokens"]?.intValue ?? maxOutputTokens(model)
            body["thinking"] = .object(["type": .string("enabled"), "budget_tokens": .number(min(budget, max(1024, limit - 1)))])
            if limit <= 1024 { body["max_tokens"] = .number(2048) }
        }
        if let user = request["user"]?.stringValue { body["metadata"] = .object(["user_id": .string(user)]) }
        if let stop = request["stop"] { body["stop_sequences"] = stop.stringValue.map { .array([.string($0)]) } ?? stop }
        if stream { body["stream"] = .bool(true) }
        if let tools = request["tools"]?.arrayValue, !tools.isEmpty {
            body["tools"] = .array(tools.map { tool in
                var entry: [String: JSONValue] = ["name": tool["function"]?["name"] ?? .string(""),
                                                  "input_schema": tool["function"]?["parameters"] ?? .object(["type": .string("object")])]
                if let description = tool["function"]?["description"] { entry["description"] = description }
                return .object(entry)
            })
            switch request["tool_choice"] {
            case .string("required")?: body["tool_choice"] = .object(["type": .string("any")])
            case .string("none")?: body["tool_choice"] = .object(["type": .string("none")])
            case .object(let choice)?: body["tool_choice"] = .object(["type": .string("tool"), "name": choice["function"]?["name"] ?? .string("")])
            default: break
            }
        }
        if let schema = StructuredOutput.schema(request) {
            let tool: JSONValue = .object(["name": .string(StructuredOutput.toolName), "description": .string("Give the answer in this structure."),
                                           "input_schema": schema])
            body["tools"] = .array((body["tools"]?.arrayValue ?? []) + [tool])
            body["tool_choice"] = .object(["type": .string("tool"), "name": .string(StructuredOutput.toolName)])
        }
        return .object(body)
    }

    private static func userBlocks(_ message: JSONValue) -> [JSONValue] {
        if let text = message["content"]?.stringValue { return [.object(["type": .string("text"), "text": .string(text)])] }
        return (message["content"]?.arrayValue ?? []).compactMap { part in
            switch part["type"]?.stringValue {
            case "text": return .object(["type": .string("text"), "text": part["text"] ?? .string("")])
            case "image_url":
                guard let url = part["image_url"]?["url"]?.stringValue else { return nil }
                if url.hasPrefix("data:"), let comma = url.firstIndex(of: ","), let semicolon = url.firstIndex(of: ";") {
                    let mediaType = String(url[url.index(url.startIndex, offsetBy: 5)..<semicolon])
                    return .object(["type": .string("image"), "source": .object(["type": .string("base64"), "media_type": .string(mediaType),
                                                                                 "data": .string(String(url[url.index(after: comma)...]))])])
                }
                return .object(["type": .string("image"), "source": .object(["type": .string("url"), "url": .string(url)])])
            default: return nil
            }
        }
    }

    // MARK: responses

    static func finishReason(_ stop: String?) -> String {
        switch stop {
        case "max_tokens": return "length"
        case "tool_use": return "tool_calls"
        case "refusal": return "content_filter"
        default: return "stop"
        }
    }

    static func chatCompletion(_ response: JSONValue, model: String) -> JSONValue {
        var text = ""
        var calls: [JSONValue] = []
        for block in response["content"]?.arrayValue ?? [] {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "tool_use" where block["name"]?.stringValue == StructuredOutput.toolName:
                text += String(decoding: (block["input"] ?? .object([:])).encoded(), as: UTF8.self)
            case "tool_use":
                calls.append(.object(["id": block["id"] ?? .string(""), "type": .string("function"),
                                      "function": .object(["name": block["name"] ?? .string(""),
                                                           "arguments": .string(String(decoding: (block["input"] ?? .object([:])).encoded(), as: UTF8.self))])]))
            default: break
            }
        }
        var message: [String: JSONValue] = ["role": .string("assistant"), "content": calls.isEmpty || !text.isEmpty ? .string(text) : .null]
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return .object([
            "id": response["id"] ?? .string("msg"),
            "object": .string("chat.completion"),
            "created": .number(Double(Int(Date().timeIntervalSince1970))),
            "model": .string(model),
            "choices": .array([.object(["index": .number(0), "message": .object(message),
                                        "finish_reason": .string(calls.isEmpty && response["stop_reason"]?.stringValue == "tool_use"
                                                                 ? "stop" : finishReason(response["stop_reason"]?.stringValue)), "logprobs": .null])]),
            "usage": TokenUsage(anthropic: response["usage"]).openAI,
        ])
    }

    /// Anthropic stream events → OpenAI chunks.
    struct StreamTranslator {
        private var chunks: ChunkFactory
        var usage = TokenUsage()
        var toolIndex: [Int: Int] = [:]
        /// The block carrying a structured answer (its JSON streams as text).
        var structuredBlock: Int?

        init(model: String) { chunks = ChunkFactory(id: "msg", model: model) }

        private func chunk(_ delta: JSONValue, finish: String? = nil) -> JSONValue { chunks.delta(delta, finish: finish) }

        mutating func translate(_ event: JSONValue) throws -> [JSONValue] {
            switch event["type"]?.stringValue {
            case "message_start":
                chunks.id = event["message"]?["id"]?.stringValue ?? chunks.id
                usage = TokenUsage(anthropic: event["message"]?["usage"])
                return [chunk(.object(["role": .string("assistant"), "content": .string("")]))]
            case "content_block_start":
                guard event["content_block"]?["type"]?.stringValue == "tool_use", let block = event["index"]?.intValue else { return [] }
                if event["content_block"]?["name"]?.stringValue == StructuredOutput.toolName {
                    structuredBlock = block
                    return []
                }
                let index = toolIndex.count
                toolIndex[block] = index
                return [chunk(.object(["tool_calls": .array([.object([
                    "index": .number(Double(index)), "id": event["content_block"]?["id"] ?? .string(""), "type": .string("function"),
                    "function": .object(["name": event["content_block"]?["name"] ?? .string(""), "arguments": .string("")]),
                ])])]))]
            case "content_block_delta":
                let delta = event["delta"]
                if delta?["type"]?.stringValue == "text_delta" { return [chunk(.object(["content": delta?["text"] ?? .string("")]))] }
                if delta?["type"]?.stringValue == "input_json_delta", let block = event["index"]?.intValue, block == structuredBlock {
                    return [chunk(.object(["content": delta?["partial_json"] ?? .string("")]))]
                }
                if delta?["type"]?.stringValue == "input_json_delta", let block = event["index"]?.intValue, let index = toolIndex[block] {
                    return [chunk(.object(["tool_calls": .array([.object(["index": .number(Double(index)),
                                                                           "function": .object(["arguments": delta?["partial_json"] ?? .string("")])])])]))]
                }
                return []
            case "message_delta":
                usage.output = event["usage"]?["output_tokens"].map { $0.count() } ?? usage.output
                let stop = event["delta"]?["stop_reason"]?.stringValue
                return [chunk(.object([:]), finish: stop == "tool_use" && toolIndex.isEmpty && structuredBlock != nil ? "stop" : AnthropicAdapter.finishReason(stop))]
            case "message_stop":
                return [chunks.usage(usage.openAI)]
            case "error":
                throw ProviderError.http(status: 529, message: event["error"]?["message"]?.stringValue ?? "Anthropic stream error")
            default:
                return []
            }
        }
    }
}
