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
        return (url, headers, Self.translate(request, model: model.upstreamID, stream: stream).encoded())
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

    static func translate(_ request: JSONValue, model: String, stream: Bool) -> JSONValue {
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
        if request["response_format"]?["type"]?.stringValue?.hasPrefix("json") == true {
            system.append("Answer with one JSON object and nothing else.")
        }
        var body: [String: JSONValue] = [
            "model": .string(model),
            "messages": .array(messages),
            "max_tokens": request["max_completion_tokens"] ?? request["max_tokens"] ?? .number(1024),
        ]
        if !system.isEmpty { body["system"] = .string(system.joined(separator: "\n\n")) }
        for key in ["temperature", "top_p"] { if let value = request[key] { body[key] = value } }
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
            case "tool_use":
                calls.append(.object(["id": block["id"] ?? .string(""), "type": .string("function"),
                                      "function": .object(["name": block["name"] ?? .string(""),
                                                           "arguments": .string(String(decoding: (block["input"] ?? .object([:])).encoded(), as: UTF8.self))])]))
            default: break
            }
        }
        var message: [String: JSONValue] = ["role": .string("assistant"), "content": calls.isEmpty || !text.isEmpty ? .string(text) : .null]
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        let input = response["usage"]?["input_tokens"].count() ?? 0
        let output = response["usage"]?["output_tokens"].count() ?? 0
        return .object([
            "id": response["id"] ?? .string("msg"),
            "object": .string("chat.completion"),
            "created": .number(Double(Int(Date().timeIntervalSince1970))),
            "model": .string(model),
            "choices": .array([.object(["index": .number(0), "message": .object(message),
                                        "finish_reason": .string(finishReason(response["stop_reason"]?.stringValue)), "logprobs": .null])]),
            "usage": .object(["prompt_tokens": .number(input), "completion_tokens": .number(output), "total_tokens": .number(input + output)]),
        ])
    }

    /// Anthropic stream events → OpenAI chunks.
    struct StreamTranslator {
        private var chunks: ChunkFactory
        var inputTokens = 0
        var outputTokens = 0
        var toolIndex: [Int: Int] = [:]

        init(model: String) { chunks = ChunkFactory(id: "msg", model: model) }

        private func chunk(_ delta: JSONValue, finish: String? = nil) -> JSONValue { chunks.delta(delta, finish: finish) }

        mutating func translate(_ event: JSONValue) throws -> [JSONValue] {
            switch event["type"]?.stringValue {
            case "message_start":
                chunks.id = event["message"]?["id"]?.stringValue ?? chunks.id
                inputTokens = event["message"]?["usage"]?["input_tokens"].count() ?? 0
                return [chunk(.object(["role": .string("assistant"), "content": .string("")]))]
            case "content_block_start":
                guard event["content_block"]?["type"]?.stringValue == "tool_use", let block = event["index"]?.intValue else { return [] }
                let index = toolIndex.count
                toolIndex[block] = index
                return [chunk(.object(["tool_calls": .array([.object([
                    "index": .number(Double(index)), "id": event["content_block"]?["id"] ?? .string(""), "type": .string("function"),
                    "function": .object(["name": event["content_block"]?["name"] ?? .string(""), "arguments": .string("")]),
                ])])]))]
            case "content_block_delta":
                let delta = event["delta"]
                if delta?["type"]?.stringValue == "text_delta" { return [chunk(.object(["content": delta?["text"] ?? .string("")]))] }
                if delta?["type"]?.stringValue == "input_json_delta", let block = event["index"]?.intValue, let index = toolIndex[block] {
                    return [chunk(.object(["tool_calls": .array([.object(["index": .number(Double(index)),
                                                                           "function": .object(["arguments": delta?["partial_json"] ?? .string("")])])])]))]
                }
                return []
            case "message_delta":
                outputTokens = event["usage"]?["output_tokens"].map { $0.count() } ?? outputTokens
                return [chunk(.object([:]), finish: AnthropicAdapter.finishReason(event["delta"]?["stop_reason"]?.stringValue))]
            case "message_stop":
                return [chunks.usage(.object(["prompt_tokens": .number(inputTokens), "completion_tokens": .number(outputTokens),
                                              "total_tokens": .number(inputTokens + outputTokens)]))]
            case "error":
                throw ProviderError.http(status: 529, message: event["error"]?["message"]?.stringValue ?? "Anthropic stream error")
            default:
                return []
            }
        }
    }
}
