import Foundation
import GatewayKit
import Shared

/// Ollama's `/api/chat` (NDJSON stream) and `/api/embed`: a private model on the enterprise's
/// own machines.
struct OllamaAdapter: ProviderAdapter {
    let config: ProviderConfig
    private var http: ProviderHTTP { ProviderHTTP(provider: config.name) }
    private var base: String { (config.baseURL ?? "http://127.0.0.1:11434").trimmingTrailingSlash }

    static func translate(_ request: JSONValue, model: String, stream: Bool) -> JSONValue {
        let messages: [JSONValue] = (request["messages"]?.arrayValue ?? []).map { message in
            var entry: [String: JSONValue] = ["role": .string(message["role"]?.stringValue == "developer" ? "system" : message["role"]?.stringValue ?? "user"),
                                              "content": .string(ChatText.content(message))]
            if let calls = message["tool_calls"]?.arrayValue {
                entry["tool_calls"] = .array(calls.map { call in
                    let arguments = call["function"]?["arguments"]?.stringValue.flatMap { try? JSONValue.parse(Data($0.utf8)) } ?? .object([:])
                    return .object(["function": .object(["name": call["function"]?["name"] ?? .string(""), "arguments": arguments])])
                })
            }
            let images = (message["content"]?.arrayValue ?? []).compactMap { part -> JSONValue? in
                guard let url = part["image_url"]?["url"]?.stringValue, let comma = url.firstIndex(of: ",") else { return nil }
                return .string(String(url[url.index(after: comma)...]))
            }
            if !images.isEmpty { entry["images"] = .array(images) }
            return .object(entry)
        }
        var options: [String: JSONValue] = [:]
        if let value = request["temperature"] { options["temperature"] = value }
        if let value = request["top_p"] { options["top_p"] = value }
        if let value = request["max_completion_tokens"] ?? request["max_tokens"] { options["num_predict"] = value }
        if let stop = request["stop"] { options["stop"] = stop.stringValue.map { .array([.string($0)]) } ?? stop }
        if let seed = request["seed"], seed != .null { options["seed"] = seed }
        if let top = request["top_k"] { options["top_k"] = top }
        var body: [String: JSONValue] = ["model": .string(model), "messages": .array(messages), "stream": .bool(stream)]
        if !options.isEmpty { body["options"] = .object(options) }
        if request["reasoning_effort"]?.stringValue != nil { body["think"] = .bool(true) }
        if let tools = request["tools"] { body["tools"] = tools }
        if let format = request["response_format"] {
            if format["type"]?.stringValue == "json_schema", let schema = format["json_schema"]?["schema"] { body["format"] = schema }
            else if format["type"]?.stringValue == "json_object" { body["format"] = .string("json") }
        }
        return .object(body)
    }

    static func message(_ response: JSONValue) -> JSONValue {
        let calls = (response["message"]?["tool_calls"]?.arrayValue ?? []).enumerated().map { index, call in
            JSONValue.object(["id": .string(ToolCallID.make()), "type": .string("function"),
                              "function": .object(["name": call["function"]?["name"] ?? .string(""),
                                                   "arguments": .string(String(decoding: (call["function"]?["arguments"] ?? .object([:])).encoded(), as: UTF8.self))])])
        }
        var message: [String: JSONValue] = ["role": .string("assistant"), "content": .string(response["message"]?["content"]?.stringValue ?? "")]
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return .object(message)
    }

    static func finish(_ response: JSONValue, hasTools: Bool) -> String {
        if hasTools { return "tool_calls" }
        return response["done_reason"]?.stringValue == "length" ? "length" : "stop"
    }

    /// Nil when the model reported no counts (the gateway then estimates, and says so).
    static func usage(_ response: JSONValue) -> JSONValue? {
        guard response["prompt_eval_count"] != nil || response["eval_count"] != nil else { return nil }
        let input = response["prompt_eval_count"].count(), output = response["eval_count"].count()
        return .object(["prompt_tokens": .number(input), "completion_tokens": .number(output), "total_tokens": .number(input + output)])
    }

    func unsupported(_ request: JSONValue, model: ModelConfig) -> String? {
        ChatParameters.common(request, provider: "ollama", supportsSeed: true)
    }

    func complete(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let response = try await http.json(http.request(base + "/api/chat", headers: [], body: Self.translate(request, model: model.upstreamID, stream: false).encoded()),
                                           deadline: deadline)
        let message = Self.message(response)
        return .object([
            "id": .string("chatcmpl-ollama-\(Int(Date().timeIntervalSince1970 * 1000))"), "object": .string("chat.completion"),
            "created": .number(Double(Int(Date().timeIntervalSince1970))), "model": .string(model.name),
            "choices": .array([.object(["index": .number(0), "message": message,
                                        "finish_reason": .string(Self.finish(response, hasTools: message["tool_calls"] != nil)), "logprobs": .null])]),
            "usage": Self.usage(response) ?? .null,
        ])
    }

    func stream(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> AsyncThrowingStream<JSONValue, Error> {
        let response = try await http.send(http.request(base + "/api/chat", headers: [], body: Self.translate(request, model: model.upstreamID, stream: true).encoded()),
                                           deadline: deadline)
        let lines = response.body.lines()
        let chunks = ChunkFactory(id: "chatcmpl-ollama-\(Int(Date().timeIntervalSince1970 * 1000))", model: model.name)
        return AsyncThrowingStream { continuation in
            let task = Task {
                continuation.yield(chunks.delta(.object(["role": .string("assistant"), "content": .string("")])))
                var sawTools = false
                do {
                    for try await line in lines {
                        let event = try JSONValue.parse(line)
                        if let error = event["error"]?.stringValue { throw ProviderError.http(status: 500, message: "provider '\(config.name)': \(error)") }
                        let message = Self.message(event)
                        if let calls = message["tool_calls"]?.arrayValue {
                            sawTools = true
                            continuation.yield(chunks.delta(.object(["tool_calls": .array(calls.enumerated().map { $0.element.setting("index", .number(Double($0.offset))) })])))
                        }
                        if let text = message["content"]?.stringValue, !text.isEmpty { continuation.yield(chunks.delta(.object(["content": .string(text)]))) }
                        if event["done"]?.boolValue == true {
                            continuation.yield(chunks.delta(.object([:]), finish: Self.finish(event, hasTools: sawTools)))
                            if let usage = Self.usage(event) { continuation.yield(chunks.usage(usage)) }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    func embed(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let body: JSONValue = .object(["model": .string(model.upstreamID), "input": request["input"] ?? .string("")])
        let response = try await http.json(http.request(base + "/api/embed", headers: [], body: body.encoded()), deadline: deadline)
        let data = (response["embeddings"]?.arrayValue ?? []).enumerated().map { index, vector in
            JSONValue.object(["object": .string("embedding"), "index": .number(Double(index)), "embedding": vector])
        }
        let tokens = response["prompt_eval_count"].count()
        return .object(["object": .string("list"), "data": .array(data), "model": .string(model.name),
                        "usage": .object(["prompt_tokens": .number(tokens), "total_tokens": .number(tokens)])])
    }
}
