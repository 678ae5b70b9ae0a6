import Crypto
import Foundation
import GatewayKit
import Shared

/// A deterministic provider for demos and tests — documented as such: it answers every request
/// from its content alone (no network, no model). It echoes the last user message, calls the
/// first offered tool when the message asks for a tool, answers a tool result, and embeds text
/// with the gateway's built-in embedder. Token counts are the words of the prompt and answer.
struct MockAdapter: ProviderAdapter {
    let config: ProviderConfig

    /// Deterministic already: a seed changes nothing, and there is nothing to reason with.
    func unsupported(_ request: JSONValue, model: ModelConfig) -> String? {
        ChatParameters.common(request, provider: "the mock provider", supportsSeed: true)
    }

    func complete(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let (message, finish) = answer(request)
        let usage = Self.usage(request, message)
        return .object([
            "id": .string("chatcmpl-mock-\(Self.digest(request.encoded()))"),
            "object": .string("chat.completion"),
            "created": .number(Double(Int(Date().timeIntervalSince1970))),
            "model": .string(model.name),
            "choices": .array([.object(["index": .number(0), "message": message, "finish_reason": .string(finish), "logprobs": .null])]),
            "usage": usage,
        ])
    }

    func stream(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> AsyncThrowingStream<JSONValue, Error> {
        let (message, finish) = answer(request)
        let usage = Self.usage(request, message)
        let factory = ChunkFactory(id: "chatcmpl-mock-\(Self.digest(request.encoded()))", model: model.name)
        let chunk = factory.delta
        var chunks = [chunk(.object(["role": .string("assistant"), "content": .string("")]), nil)]
        if let calls = message["tool_calls"]?.arrayValue {
            let indexed = calls.enumerated().map { $0.element.setting("index", .number(Double($0.offset))) }
            chunks.append(chunk(.object(["tool_calls": .array(indexed)]), nil))
        } else if let text = message["content"]?.stringValue {
            for word in text.split(separator: " ", omittingEmptySubsequences: false).enumerated() {
                chunks.append(chunk(.object(["content": .string((word.offset == 0 ? "" : " ") + word.element)]), nil))
            }
        }
        chunks.append(chunk(.object([:]), finish))
        chunks.append(factory.usage(usage))
        return AsyncThrowingStream { continuation in
            for chunk in chunks { continuation.yield(chunk) }
            continuation.finish()
        }
    }

    func embed(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let inputs: [String] = request["input"]?.stringValue.map { [$0] } ?? request["input"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let data = inputs.enumerated().map { index, text in
            JSONValue.object(["object": .string("embedding"), "index": .number(Double(index)),
                              "embedding": .array(Embedder.embed(text).map { .number(Double($0)) })])
        }
        let tokens = inputs.reduce(0) { $0 + Self.words($1) }
        return .object(["object": .string("list"), "data": .array(data), "model": .string(model.name),
                        "usage": .object(["prompt_tokens": .number(Double(tokens)), "total_tokens": .number(Double(tokens))])])
    }

    private func answer(_ request: JSONValue) -> (JSONValue, String) {
        let messages = request["messages"]?.arrayValue ?? []
        if let last = messages.last, last["role"]?.stringValue == "tool" {
            return (.object(["role": .string("assistant"), "content": .string("The tool said: \(ChatText.content(last))")]), "stop")
        }
        let prompt = messages.last(where: { $0["role"]?.stringValue == "user" }).map(ChatText.content) ?? ""
        if let tool = request["tools"]?.arrayValue?.first, let name = tool["function"]?["name"]?.stringValue, prompt.lowercased().contains("tool") {
            let call: JSONValue = .object(["id": .string("call_\(Self.digest(Data(prompt.utf8)))"), "type": .string("function"),
                                           "function": .object(["name": .string(name), "arguments": .string(#"{"query":"\#(prompt.prefix(40).replacingOccurrences(of: "\"", with: ""))"}"#)])])
            return (.object(["role": .string("assistant"), "content": .null, "tool_calls": .array([call])]), "tool_calls")
        }
        if request["response_format"]?["type"]?.stringValue == "json_object" || request["response_format"]?["type"]?.stringValue == "json_schema" {
            return (.object(["role": .string("assistant"), "content": .string(#"{"echo":"\#(prompt.prefix(80).replacingOccurrences(of: "\"", with: ""))"}"#)]), "stop")
        }
        return (.object(["role": .string("assistant"), "content": .string("Mock answer to: \(prompt)")]), "stop")
    }

    static func words(_ text: String) -> Int { max(1, text.split(whereSeparator: { $0 == " " || $0 == "\n" }).count) }

    static func usage(_ request: JSONValue, _ message: JSONValue) -> JSONValue {
        let input = (request["messages"]?.arrayValue ?? []).reduce(0) { $0 + words(ChatText.content($1)) }
        let output = words(message["content"]?.stringValue ?? message["tool_calls"].map { String(decoding: $0.encoded(), as: UTF8.self) } ?? "")
        return .object(["prompt_tokens": .number(Double(input)), "completion_tokens": .number(Double(output)), "total_tokens": .number(Double(input + output))])
    }

    static func digest(_ data: Data) -> String { Hex.encode(SHA256.hash(data: data).prefix(6)) }
}

/// The text of chat messages, whatever their content's shape (string or parts).
enum ChatText {
    static func content(_ message: JSONValue) -> String {
        if let text = message["content"]?.stringValue { return text }
        return (message["content"]?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined(separator: "\n")
    }

    /// Everything a request would show a model: all messages' text.
    static func prompt(_ request: JSONValue) -> String {
        (request["messages"]?.arrayValue ?? []).map(content).joined(separator: "\n")
    }
}
