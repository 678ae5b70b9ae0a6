import Foundation
import GatewayKit
import Shared

/// Amazon Bedrock's Converse and ConverseStream, signed with SigV4; the stream arrives in AWS's
/// binary event-stream framing.
struct BedrockAdapter: ProviderAdapter {
    let config: ProviderConfig
    private var http: ProviderHTTP { ProviderHTTP(provider: config.name) }

    private func call(_ operation: String, request: JSONValue, model: ModelConfig) throws -> (String, [(String, String)], Data) {
        let region = config.region ?? "us-east-1"
        let base = (config.baseURL ?? "https://bedrock-runtime.\(region).amazonaws.com").trimmingTrailingSlash
        guard let url = URL(string: base), let host = url.host else { throw ProviderError.configuration("provider '\(config.name)': bad base_url") }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        guard let accessKey = config.environment(config.accessKeyEnv), let secretKey = config.environment(config.secretKeyEnv) else {
            throw ProviderError.configuration("provider '\(config.name)': \(config.accessKeyEnv ?? "access key") or \(config.secretKeyEnv ?? "secret key") is not set")
        }
        let path = url.path.trimmingTrailingSlash + "/model/\(SigV4.encode(model.upstreamID))/\(operation)"
        let body = Self.translate(request).encoded()
        let signer = SigV4(accessKey: accessKey, secretKey: secretKey, sessionToken: config.environment(config.sessionTokenEnv), region: region, service: "bedrock")
        let headers = signer.sign(method: "POST", host: hostHeader, path: path, body: body) + [("Content-Type", "application/json")]
        return ("\(url.scheme ?? "https")://\(hostHeader)\(path)", headers, body)
    }

    func complete(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let (url, headers, body) = try call("converse", request: request, model: model)
        return Self.chatCompletion(try await http.json(http.request(url, headers: headers, body: body), deadline: deadline), model: model.name)
    }

    func stream(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> AsyncThrowingStream<JSONValue, Error> {
        let (url, headers, body) = try call("converse-stream", request: request, model: model)
        let response = try await http.send(http.request(url, headers: headers, body: body), deadline: deadline)
        let provider = config.name
        return AsyncThrowingStream { continuation in
            let task = Task {
                var decoder = EventStreamDecoder()
                var translator = StreamTranslator(model: model.name)
                do {
                    for try await chunk in response.body {
                        for message in try decoder.feed(chunk.readableBytesView) {
                            if message.headers[":message-type"] == "exception" || message.headers[":message-type"] == "error" {
                                let detail = (try? JSONValue.parse(message.payload))?["message"]?.stringValue ?? String(decoding: message.payload, as: UTF8.self)
                                throw ProviderError.http(status: 500, message: "provider '\(provider)': \(message.headers[":exception-type"] ?? "error"): \(detail)")
                            }
                            let payload = (try? JSONValue.parse(message.payload)) ?? .object([:])
                            for out in translator.translate(event: message.headers[":event-type"] ?? "", payload) { continuation.yield(out) }
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

    // MARK: translation

    static func translate(_ request: JSONValue) -> JSONValue {
        var system: [JSONValue] = []
        var messages: [JSONValue] = []
        func append(_ role: String, _ blocks: [JSONValue]) {
            if let last = messages.last, last["role"]?.stringValue == role, case .array(let existing)? = last["content"] {
                messages[messages.count - 1] = last.setting("content", .array(existing + blocks))
            } else {
                messages.append(.object(["role": .string(role), "content": .array(blocks)]))
            }
        }
        for message in request["messages"]?.arrayValue ?? [] {
            let text = ChatText.content(message)
            switch message["role"]?.stringValue ?? "user" {
            case "system", "developer": system.append(.object(["text": .string(text)]))
            case "assistant":
                var blocks: [JSONValue] = text.isEmpty ? [] : [.object(["text": .string(text)])]
                for call in message["tool_calls"]?.arrayValue ?? [] {
                    let input = call["function"]?["arguments"]?.stringValue.flatMap { try? JSONValue.parse(Data($0.utf8)) } ?? .object([:])
                    blocks.append(.object(["toolUse": .object(["toolUseId": call["id"] ?? .string(""), "name": call["function"]?["name"] ?? .string(""), "input": input])]))
                }
                append("assistant", blocks)
            case "tool":
                append("user", [.object(["toolResult": .object(["toolUseId": message["tool_call_id"] ?? .string(""),
                                                                "content": .array([.object(["text": .string(text)])])])])])
            default: append("user", userBlocks(message))
            }
        }
        var inference: [String: JSONValue] = [:]
        if let value = request["max_completion_tokens"] ?? request["max_tokens"] { inference["maxTokens"] = value }
        if let value = request["temperature"] { inference["temperature"] = value }
        if let value = request["top_p"] { inference["topP"] = value }
        if let stop = request["stop"] { inference["stopSequences"] = stop.stringValue.map { .array([.string($0)]) } ?? stop }
        var body: [String: JSONValue] = ["messages": .array(messages)]
        if !system.isEmpty { body["system"] = .array(system) }
        if !inference.isEmpty { body["inferenceConfig"] = .object(inference) }
        var additional: [String: JSONValue] = [:]
        if let top = request["top_k"] { additional["top_k"] = top }
        if let budget = ChatParameters.thinkingBudget(request["reasoning_effort"]?.stringValue) {
            additional["thinking"] = .object(["type": .string("enabled"), "budget_tokens": .number(budget)])
        }
        if !additional.isEmpty { body["additionalModelRequestFields"] = .object(additional) }
        if let tools = request["tools"]?.arrayValue, !tools.isEmpty {
            var toolConfig: [String: JSONValue] = ["tools": .array(tools.map { tool in
                .object(["toolSpec": .object(["name": tool["function"]?["name"] ?? .string(""),
                                              "description": tool["function"]?["description"] ?? .string(""),
                                              "inputSchema": .object(["json": tool["function"]?["parameters"] ?? .object(["type": .string("object")])])])])
            })]
            switch request["tool_choice"] {
            case .string("required")?: toolConfig["toolChoice"] = .object(["any": .object([:])])
            case .object(let choice)?: toolConfig["toolChoice"] = .object(["tool": .object(["name": choice["function"]?["name"] ?? .string("")])])
            default: toolConfig["toolChoice"] = .object(["auto": .object([:])])
            }
            body["toolConfig"] = .object(toolConfig)
        }
        if let schema = StructuredOutput.schema(request) {
            let tool: JSONValue = .object(["toolSpec": .object(["name": .string(StructuredOutput.toolName), "description": .string("Give the answer in this structure."),
                                                                "inputSchema": .object(["json": schema])])])
            body["toolConfig"] = .object(["tools": .array((body["toolConfig"]?["tools"]?.arrayValue ?? []) + [tool]),
                                          "toolChoice": .object(["tool": .object(["name": .string(StructuredOutput.toolName)])])])
        } else if request["response_format"]?["type"]?.stringValue == "json_object" {
            body["system"] = .array((body["system"]?.arrayValue ?? []) + [.object(["text": .string("Answer with one JSON object and nothing else.")])])
        }
        return .object(body)
    }

    /// A user message's text and images (Converse takes images inline, as bytes).
    static func userBlocks(_ message: JSONValue) -> [JSONValue] {
        if let text = message["content"]?.stringValue { return [.object(["text": .string(text)])] }
        return (message["content"]?.arrayValue ?? []).compactMap { part in
            if let text = part["text"] { return .object(["text": text]) }
            guard let url = part["image_url"]?["url"]?.stringValue, let image = InlineImage(dataURL: url) else { return nil }
            return .object(["image": .object(["format": .string(image.format), "source": .object(["bytes": .string(image.base64)])])])
        }
    }

    func unsupported(_ request: JSONValue, model: ModelConfig) -> String? {
        if let common = ChatParameters.common(request, provider: "bedrock", supportsSeed: false) { return common }
        if request["top_k"] != nil, !model.upstreamID.contains("anthropic") { return "bedrock takes top_k for Anthropic models only" }
        if request["reasoning_effort"]?.stringValue != nil, !model.upstreamID.contains("anthropic") {
            return "bedrock's Converse has reasoning for Anthropic models only (reasoning_effort)"
        }
        for message in request["messages"]?.arrayValue ?? [] {
            for part in message["content"]?.arrayValue ?? [] {
                if let url = part["image_url"]?["url"]?.stringValue, InlineImage(dataURL: url) == nil {
                    return "bedrock takes images inline (data: URLs of png, jpeg, gif or webp), not by URL"
                }
            }
        }
        return nil
    }

    static func finishReason(_ reason: String?) -> String {
        switch reason {
        case "max_tokens": return "length"
        case "tool_use": return "tool_calls"
        case "guardrail_intervened", "content_filtered": return "content_filter"
        default: return "stop"
        }
    }

    static func usage(_ value: JSONValue?) -> JSONValue {
        let input = value?["inputTokens"].count() ?? 0, output = value?["outputTokens"].count() ?? 0
        return .object(["prompt_tokens": .number(input), "completion_tokens": .number(output), "total_tokens": .number(input + output)])
    }

    static func chatCompletion(_ response: JSONValue, model: String) -> JSONValue {
        var text = ""
        var calls: [JSONValue] = []
        for block in response["output"]?["message"]?["content"]?.arrayValue ?? [] {
            if let value = block["text"]?.stringValue { text += value }
            if let use = block["toolUse"], use["name"]?.stringValue == StructuredOutput.toolName {
                text += String(decoding: (use["input"] ?? .object([:])).encoded(), as: UTF8.self)
            } else if let use = block["toolUse"] {
                calls.append(.object(["id": use["toolUseId"] ?? .string(""), "type": .string("function"),
                                      "function": .object(["name": use["name"] ?? .string(""),
                                                           "arguments": .string(String(decoding: (use["input"] ?? .object([:])).encoded(), as: UTF8.self))])]))
            }
        }
        var message: [String: JSONValue] = ["role": .string("assistant"), "content": calls.isEmpty || !text.isEmpty ? .string(text) : .null]
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return .object([
            "id": .string("chatcmpl-bedrock-\(Int(Date().timeIntervalSince1970 * 1000))"), "object": .string("chat.completion"),
            "created": .number(Double(Int(Date().timeIntervalSince1970))), "model": .string(model),
            "choices": .array([.object(["index": .number(0), "message": .object(message),
                                        "finish_reason": .string(calls.isEmpty && response["stopReason"]?.stringValue == "tool_use"
                                                                 ? "stop" : finishReason(response["stopReason"]?.stringValue)), "logprobs": .null])]),
            "usage": usage(response["usage"]),
        ])
    }

    struct StreamTranslator {
        private let chunks: ChunkFactory
        var toolIndex: [Int: Int] = [:]
        /// The block carrying a structured answer (its JSON streams as text).
        var structuredBlock: Int?

        init(model: String) { chunks = ChunkFactory(id: "chatcmpl-bedrock-\(Int(Date().timeIntervalSince1970 * 1000))", model: model) }

        private func chunk(_ delta: JSONValue, finish: String? = nil) -> JSONValue { chunks.delta(delta, finish: finish) }

        mutating func translate(event: String, _ payload: JSONValue) -> [JSONValue] {
            switch event {
            case "messageStart": return [chunk(.object(["role": .string("assistant"), "content": .string("")]))]
            case "contentBlockStart":
                guard let use = payload["start"]?["toolUse"], let block = payload["contentBlockIndex"]?.intValue else { return [] }
                if use["name"]?.stringValue == StructuredOutput.toolName {
                    structuredBlock = block
                    return []
                }
                let index = toolIndex.count
                toolIndex[Int(block)] = index
                return [chunk(.object(["tool_calls": .array([.object(["index": .number(Double(index)), "id": use["toolUseId"] ?? .string(""),
                                                                      "type": .string("function"),
                                                                      "function": .object(["name": use["name"] ?? .string(""), "arguments": .string("")])])])]))]
            case "contentBlockDelta":
                if let text = payload["delta"]?["text"] { return [chunk(.object(["content": text]))] }
                if let input = payload["delta"]?["toolUse"]?["input"], let block = payload["contentBlockIndex"]?.intValue, block == structuredBlock {
                    return [chunk(.object(["content": input]))]
                }
                if let input = payload["delta"]?["toolUse"]?["input"], let block = payload["contentBlockIndex"]?.intValue, let index = toolIndex[block] {
                    return [chunk(.object(["tool_calls": .array([.object(["index": .number(Double(index)), "function": .object(["arguments": input])])])]))]
                }
                return []
            case "messageStop":
                let stop = payload["stopReason"]?.stringValue
                return [chunk(.object([:]), finish: stop == "tool_use" && toolIndex.isEmpty && structuredBlock != nil ? "stop" : BedrockAdapter.finishReason(stop))]
            case "metadata":
                return [chunks.usage(BedrockAdapter.usage(payload["usage"]))]
            default: return []
            }
        }
    }
}
