import Foundation
import Shared

/// Everything in a request that reaches a model, as the guardrails scan it: message text, the
/// arguments of tool calls the conversation carries, the tools offered (names, descriptions,
/// parameter schemas), and an embeddings request's input. Personal data in any of them is
/// personal data sent to the provider.
enum GuardedText {
    static func of(_ request: JSONValue) -> String {
        var parts: [String] = []
        for message in request["messages"]?.arrayValue ?? [] {
            parts.append(ChatText.content(message))
            for call in message["tool_calls"]?.arrayValue ?? [] {
                if let arguments = call["function"]?["arguments"]?.stringValue { parts.append(arguments) }
            }
        }
        for tool in request["tools"]?.arrayValue ?? [] {
            let function = tool["function"] ?? tool
            for key in ["name", "description"] { if let text = function[key]?.stringValue { parts.append(text) } }
            if let parameters = function["parameters"] { parts.append(String(decoding: parameters.encoded(), as: UTF8.self)) }
        }
        switch request["input"] {
        case .string(let text)?: parts.append(text)
        case .array(let items)?: parts += items.compactMap(\.stringValue)
        default: break
        }
        return parts.filter { !$0.isEmpty }.joined(separator: "\n")
    }

    /// The request with personal data replaced wherever `of` would find it.
    static func redacted(_ request: JSONValue, types: Set<String>?) -> JSONValue {
        func clean(_ text: String) -> String { PIIDetector.redact(text, types: types) }
        var result = request
        if let messages = request["messages"]?.arrayValue {
            result = result.setting("messages", .array(messages.map { message in
                var message = message
                if let text = message["content"]?.stringValue {
                    message = message.setting("content", .string(clean(text)))
                } else if let parts = message["content"]?.arrayValue {
                    message = message.setting("content", .array(parts.map { part in part["text"]?.stringValue.map { part.setting("text", .string(clean($0))) } ?? part }))
                }
                if let calls = message["tool_calls"]?.arrayValue {
                    message = message.setting("tool_calls", .array(calls.map { call in
                        guard let arguments = call["function"]?["arguments"]?.stringValue else { return call }
                        return call.setting("function", call["function"]?.setting("arguments", .string(clean(arguments))))
                    }))
                }
                return message
            }))
        }
        switch request["input"] {
        case .string(let text)?: result = result.setting("input", .string(clean(text)))
        case .array(let items)?: result = result.setting("input", .array(items.map { $0.stringValue.map { .string(clean($0)) } ?? $0 }))
        default: break
        }
        return result
    }
}
