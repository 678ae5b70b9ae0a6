import Foundation
import GatewayKit
import Shared

/// Vertex AI's Gemini `generateContent` and `streamGenerateContent` (SSE), authorized by an OAuth
/// token minted from a service-account key.
struct VertexAdapter: ProviderAdapter {
    let config: ProviderConfig
    let token: ServiceAccountToken
    private var http: ProviderHTTP { ProviderHTTP(provider: config.name) }

    init(config: ProviderConfig) {
        self.config = config
        self.token = ServiceAccountToken(keyFile: config.serviceAccountFile ?? "", tokenURL: config.tokenURL, provider: config.name)
    }

    private func url(_ model: ModelConfig, stream: Bool) -> String {
        let location = config.location ?? "us-central1"
        let base = (config.baseURL ?? "https://\(location)-aiplatform.googleapis.com").trimmingTrailingSlash
        let method = stream ? "streamGenerateContent?alt=sse" : "generateContent"
        return "\(base)/v1/projects/\(config.project ?? "")/locations/\(location)/publishers/google/models/\(model.upstreamID):\(method)"
    }

    func complete(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let bearer = try await token.token(deadline: deadline)
        let response = try await http.json(http.request(url(model, stream: false), headers: [("Authorization", "Bearer \(bearer)")],
                                                        body: Self.translate(request).encoded()), deadline: deadline)
        return Self.chatCompletion(response, model: model.name)
    }

    func stream(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> AsyncThrowingStream<JSONValue, Error> {
        let bearer = try await token.token(deadline: deadline)
        let response = try await http.send(http.request(url(model, stream: true), headers: [("Authorization", "Bearer \(bearer)")],
                                                        body: Self.translate(request).encoded()), deadline: deadline)
        let events = response.body.serverSentEvents()
        let chunks = ChunkFactory(id: "chatcmpl-vertex-\(Int(Date().timeIntervalSince1970 * 1000))", model: model.name)
        return AsyncThrowingStream { continuation in
            let task = Task {
                continuation.yield(chunks.delta(.object(["role": .string("assistant"), "content": .string("")])))
                var usage: JSONValue?
                var calls = 0
                do {
                    for try await event in events {
                        let part = try JSONValue.parse(event)
                        let candidate = part["candidates"]?.arrayValue?.first
                        for piece in candidate?["content"]?["parts"]?.arrayValue ?? [] {
                            if let text = piece["text"] { continuation.yield(chunks.delta(.object(["content": text]))) }
                            if let call = piece["functionCall"] {
                                continuation.yield(chunks.delta(.object(["tool_calls": .array([Self.toolCall(call, index: calls).setting("index", .number(Double(calls)))])])))
                                calls += 1
                            }
                        }
                        if let reason = candidate?["finishReason"]?.stringValue {
                            continuation.yield(chunks.delta(.object([:]), finish: calls > 0 ? "tool_calls" : Self.finishReason(reason)))
                        }
                        if let metadata = part["usageMetadata"] { usage = Self.usage(metadata) }
                    }
                    if let usage {
                        continuation.yield(chunks.usage(usage))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: translation

    static func translate(_ request: JSONValue) -> JSONValue {
        var system: [JSONValue] = []
        var contents: [JSONValue] = []
        var toolNames: [String: String] = [:]
        func append(_ role: String, _ parts: [JSONValue]) {
            if let last = contents.last, last["role"]?.stringValue == role, case .array(let existing)? = last["parts"] {
                contents[contents.count - 1] = last.setting("parts", .array(existing + parts))
            } else {
                contents.append(.object(["role": .string(role), "parts": .array(parts)]))
            }
        }
        for message in request["messages"]?.arrayValue ?? [] {
            let text = ChatText.content(message)
            switch message["role"]?.stringValue ?? "user" {
            case "system", "developer": system.append(.object(["text": .string(text)]))
            case "assistant":
                var parts: [JSONValue] = text.isEmpty ? [] : [.object(["text": .string(text)])]
                for call in message["tool_calls"]?.arrayValue ?? [] {
                    let name = call["function"]?["name"]?.stringValue ?? ""
                    if let id = call["id"]?.stringValue { toolNames[id] = name }
                    let args = call["function"]?["arguments"]?.stringValue.flatMap { try? JSONValue.parse(Data($0.utf8)) } ?? .object([:])
                    parts.append(.object(["functionCall": .object(["name": .string(name), "args": args])]))
                }
                append("model", parts)
            case "tool":
                let name = message["tool_call_id"]?.stringValue.flatMap { toolNames[$0] } ?? message["name"]?.stringValue ?? "tool"
                let result = (try? JSONValue.parse(Data(text.utf8))).flatMap { $0.objectValue != nil ? $0 : nil } ?? .object(["content": .string(text)])
                append("user", [.object(["functionResponse": .object(["name": .string(name), "response": result])])])
            default:
                var parts: [JSONValue] = []
                if message["content"]?.stringValue != nil { parts = [.object(["text": .string(text)])] }
                for part in message["content"]?.arrayValue ?? [] {
                    if let value = part["text"] { parts.append(.object(["text": value])) }
                    if let url = part["image_url"]?["url"]?.stringValue, url.hasPrefix("data:"), let comma = url.firstIndex(of: ","), let semicolon = url.firstIndex(of: ";") {
                        parts.append(.object(["inlineData": .object(["mimeType": .string(String(url[url.index(url.startIndex, offsetBy: 5)..<semicolon])),
                                                                     "data": .string(String(url[url.index(after: comma)...]))])]))
                    }
                }
                append("user", parts)
            }
        }
        var generation: [String: JSONValue] = [:]
        if let value = request["max_completion_tokens"] ?? request["max_tokens"] { generation["maxOutputTokens"] = value }
        if let value = request["temperature"] { generation["temperature"] = value }
        if let value = request["top_p"] { generation["topP"] = value }
        if let stop = request["stop"] { generation["stopSequences"] = stop.stringValue.map { .array([.string($0)]) } ?? stop }
        if let format = request["response_format"], format["type"]?.stringValue?.hasPrefix("json") == true {
            generation["responseMimeType"] = .string("application/json")
            if let schema = format["json_schema"]?["schema"] { generation["responseSchema"] = GeminiSchema.translate(schema) }
        }
        if let seed = request["seed"], seed != .null { generation["seed"] = seed }
        if let top = request["top_k"] { generation["topK"] = top }
        if let budget = ChatParameters.thinkingBudget(request["reasoning_effort"]?.stringValue) {
            generation["thinkingConfig"] = .object(["thinkingBudget": .number(budget)])
        }
        var body: [String: JSONValue] = ["contents": .array(contents)]
        if !system.isEmpty { body["systemInstruction"] = .object(["parts": .array(system)]) }
        if !generation.isEmpty { body["generationConfig"] = .object(generation) }
        if let tools = request["tools"]?.arrayValue, !tools.isEmpty {
            body["tools"] = .array([.object(["functionDeclarations": .array(tools.map { tool in
                var declaration: [String: JSONValue] = ["name": tool["function"]?["name"] ?? .string("")]
                if let description = tool["function"]?["description"] { declaration["description"] = description }
                if let parameters = tool["function"]?["parameters"] { declaration["parameters"] = GeminiSchema.translate(parameters) }
                return .object(declaration)
            })])])
            switch request["tool_choice"] {
            case .string("required")?: body["toolConfig"] = .object(["functionCallingConfig": .object(["mode": .string("ANY")])])
            case .string("none")?: body["toolConfig"] = .object(["functionCallingConfig": .object(["mode": .string("NONE")])])
            case .object(let choice)?:
                body["toolConfig"] = .object(["functionCallingConfig": .object(["mode": .string("ANY"),
                                                                                "allowedFunctionNames": .array([choice["function"]?["name"] ?? .string("")])])])
            default: break
            }
        }
        return .object(body)
    }

    /// Gemini names a call by its function only (newer models add an id): each gets an id of
    /// its own, so a result in a later turn maps to exactly its call.
    static func toolCall(_ call: JSONValue, index: Int) -> JSONValue {
        .object(["id": .string(call["id"]?.stringValue ?? ToolCallID.make()), "type": .string("function"),
                 "function": .object(["name": call["name"] ?? .string(""),
                                      "arguments": .string(String(decoding: (call["args"] ?? .object([:])).encoded(), as: UTF8.self))])])
    }

    func unsupported(_ request: JSONValue, model: ModelConfig) -> String? {
        ChatParameters.common(request, provider: "vertex", supportsSeed: true)
    }

    static func finishReason(_ reason: String?) -> String {
        switch reason {
        case "MAX_TOKENS": return "length"
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII": return "content_filter"
        default: return "stop"
        }
    }

    static func usage(_ metadata: JSONValue) -> JSONValue {
        let input = metadata["promptTokenCount"].count(), output = metadata["candidatesTokenCount"].count()
        return .object(["prompt_tokens": .number(input), "completion_tokens": .number(output), "total_tokens": .number(input + output)])
    }

    static func chatCompletion(_ response: JSONValue, model: String) -> JSONValue {
        let candidate = response["candidates"]?.arrayValue?.first
        var text = ""
        var calls: [JSONValue] = []
        for part in candidate?["content"]?["parts"]?.arrayValue ?? [] {
            if let value = part["text"]?.stringValue { text += value }
            if let call = part["functionCall"] { calls.append(toolCall(call, index: calls.count)) }
        }
        var message: [String: JSONValue] = ["role": .string("assistant"), "content": calls.isEmpty || !text.isEmpty ? .string(text) : .null]
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return .object([
            "id": response["responseId"] ?? .string("chatcmpl-vertex"), "object": .string("chat.completion"),
            "created": .number(Double(Int(Date().timeIntervalSince1970))), "model": .string(model),
            "choices": .array([.object(["index": .number(0), "message": .object(message),
                                        "finish_reason": .string(calls.isEmpty ? finishReason(candidate?["finishReason"]?.stringValue) : "tool_calls"),
                                        "logprobs": .null])]),
            "usage": usage(response["usageMetadata"] ?? .object([:])),
        ])
    }
}
