import Foundation
import Shared

/// Anthropic's Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`) over the gateway's
/// chat pipeline. A request routed to an Anthropic model goes to it untouched (cache_control,
/// thinking, betas and all); to any other provider it is translated to a chat request, and the
/// completion — or its chunks — back to a Message and the Messages stream's exact event sequence.
enum MessagesAPI {
    /// The request as a chat request.
    static func chatRequest(_ request: JSONValue) -> Result<JSONValue, APIError> {
        guard let model = request["model"]?.stringValue, !model.isEmpty else {
            return .failure(.invalid("model: Field required"))
        }
        guard request["max_tokens"]?.intValue != nil else { return .failure(.invalid("max_tokens: Field required")) }
        guard let list = request["messages"]?.arrayValue else { return .failure(.invalid("messages: Field required")) }
        var messages: [JSONValue] = []
        switch request["system"] {
        case .string(let text)?: messages.append(.object(["role": .string("system"), "content": .string(text)]))
        case .array(let blocks)?:
            let text = blocks.compactMap { $0["text"]?.stringValue }.joined(separator: "\n\n")
            if !text.isEmpty { messages.append(.object(["role": .string("system"), "content": .string(text)])) }
        default: break
        }
        for message in list {
            let role = message["role"]?.stringValue ?? "user"
            let blocks: [JSONValue] = message["content"]?.stringValue.map { [.object(["type": .string("text"), "text": .string($0)])] }
                ?? message["content"]?.arrayValue ?? []
            if role == "assistant" {
                var text = ""
                var calls: [JSONValue] = []
                for block in blocks {
                    switch block["type"]?.stringValue {
                    case "text": text += block["text"]?.stringValue ?? ""
                    case "tool_use":
                        calls.append(.object(["id": block["id"] ?? .string(""), "type": .string("function"),
                                              "function": .object(["name": block["name"] ?? .string(""),
                                                                   "arguments": .string(String(decoding: (block["input"] ?? .object([:])).encoded(), as: UTF8.self))])]))
                    case "thinking", "redacted_thinking": continue
                    default: return .failure(.invalid("assistant content block '\(block["type"]?.stringValue ?? "?")' cannot go to this model"))
                    }
                }
                var converted: [String: JSONValue] = ["role": .string("assistant"), "content": text.isEmpty && !calls.isEmpty ? .null : .string(text)]
                if !calls.isEmpty { converted["tool_calls"] = .array(calls) }
                messages.append(.object(converted))
                continue
            }
            var parts: [JSONValue] = []
            for block in blocks {
                switch block["type"]?.stringValue {
                case "text": parts.append(.object(["type": .string("text"), "text": block["text"] ?? .string("")]))
                case "image":
                    let source = block["source"]
                    switch source?["type"]?.stringValue {
                    case "base64":
                        let url = "data:\(source?["media_type"]?.stringValue ?? "image/png");base64,\(source?["data"]?.stringValue ?? "")"
                        parts.append(.object(["type": .string("image_url"), "image_url": .object(["url": .string(url)])]))
                    case "url":
                        parts.append(.object(["type": .string("image_url"), "image_url": .object(["url": source?["url"] ?? .string("")])]))
                    default: return .failure(.invalid("image source type '\(source?["type"]?.stringValue ?? "?")' cannot go to this model"))
                    }
                case "tool_result":
                    let content = block["content"]?.stringValue ?? (block["content"]?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined()
                    let text = block["is_error"]?.boolValue == true ? "error: " + content : content
                    messages.append(.object(["role": .string("tool"), "tool_call_id": block["tool_use_id"] ?? .string(""), "content": .string(text)]))
                default:
                    return .failure(.invalid("content block '\(block["type"]?.stringValue ?? "?")' cannot go to this model (Anthropic models take it as it is)"))
                }
            }
            if !parts.isEmpty {
                let onlyText = parts.allSatisfy { $0["type"]?.stringValue == "text" }
                let content: JSONValue = onlyText ? .string(parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n")) : .array(parts)
                messages.append(.object(["role": .string("user"), "content": content]))
            }
        }
        var chat: [String: JSONValue] = ["model": .string(model), "messages": .array(messages), "max_tokens": request["max_tokens"] ?? .null]
        for key in ["temperature", "top_p", "stream"] { if let value = request[key] { chat[key] = value } }
        if let top = request["top_k"] { chat["top_k"] = top }
        if let stop = request["stop_sequences"] { chat["stop"] = stop }
        if let user = request["metadata"]?["user_id"] { chat["user"] = user }
        if let thinking = request["thinking"], thinking["type"]?.stringValue == "enabled" {
            let budget = thinking["budget_tokens"]?.intValue ?? 4096
            chat["reasoning_effort"] = .string(budget < 4096 ? "low" : budget < 16384 ? "medium" : "high")
        }
        if let tools = request["tools"]?.arrayValue, !tools.isEmpty {
            var converted: [JSONValue] = []
            for tool in tools {
                if let type = tool["type"]?.stringValue, type != "custom" {
                    return .failure(.invalid("server tool '\(type)' cannot go to this model (Anthropic models take it as it is)"))
                }
                var function: [String: JSONValue] = ["name": tool["name"] ?? .string(""), "parameters": tool["input_schema"] ?? .object(["type": .string("object")])]
                if let description = tool["description"] { function["description"] = description }
                converted.append(.object(["type": .string("function"), "function": .object(function)]))
            }
            chat["tools"] = .array(converted)
            switch request["tool_choice"]?["type"]?.stringValue {
            case "any": chat["tool_choice"] = .string("required")
            case "none": chat["tool_choice"] = .string("none")
            case "tool": chat["tool_choice"] = .object(["type": .string("function"), "function": .object(["name": request["tool_choice"]?["name"] ?? .string("")])])
            default: break
            }
        }
        return .success(.object(chat))
    }

    static func stopReason(_ finish: String?) -> String {
        switch finish {
        case "length": return "max_tokens"
        case "tool_calls": return "tool_use"
        case "content_filter": return "refusal"
        default: return "end_turn"
        }
    }

    static func usage(_ usage: JSONValue?) -> JSONValue {
        let cached = usage?["prompt_tokens_details"]?["cached_tokens"].count() ?? 0
        return .object(["input_tokens": .number((usage?["prompt_tokens"].count() ?? 0) - cached), "output_tokens": .number(usage?["completion_tokens"].count() ?? 0),
                        "cache_creation_input_tokens": .number(0), "cache_read_input_tokens": .number(cached)])
    }

    static func newID() -> String { "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }

    /// A chat completion as a Message.
    static func message(from completion: JSONValue, model: String) -> JSONValue {
        let choice = completion["choices"]?.arrayValue?.first
        var content: [JSONValue] = []
        if let text = choice?["message"]?["content"]?.stringValue, !text.isEmpty {
            content.append(.object(["type": .string("text"), "text": .string(text)]))
        }
        for call in choice?["message"]?["tool_calls"]?.arrayValue ?? [] {
            let input = call["function"]?["arguments"]?.stringValue.flatMap { try? JSONValue.parse(Data($0.utf8)) } ?? .object([:])
            content.append(.object(["type": .string("tool_use"), "id": call["id"] ?? .string(""), "name": call["function"]?["name"] ?? .string(""), "input": input]))
        }
        return .object(["id": .string(newID()), "type": .string("message"), "role": .string("assistant"), "model": .string(model),
                        "content": .array(content), "stop_reason": .string(stopReason(choice?["finish_reason"]?.stringValue)),
                        "stop_sequence": .null, "usage": usage(completion["usage"])])
    }

    /// An error in Anthropic's shape.
    static func error(_ error: APIError) -> JSONValue {
        let type: String
        switch error.status {
        case 400, 413, 422: type = error.status == 413 ? "request_too_large" : "invalid_request_error"
        case 401: type = "authentication_error"
        case 403: type = "permission_error"
        case 404: type = "not_found_error"
        case 429: type = "rate_limit_error"
        case 529: type = "overloaded_error"
        default: type = "api_error"
        }
        return .object(["type": .string("error"), "error": .object(["type": .string(type), "message": .string(error.message)])])
    }
}

/// Chat completion chunks → the Messages stream: `message_start`, `ping`, per block
/// `content_block_start` / `content_block_delta` (`text_delta`, `input_json_delta`) /
/// `content_block_stop`, then `message_delta` (stop reason, output tokens) and `message_stop`.
struct MessagesStream {
    struct Event { let type: String; let data: JSONValue }

    let id = MessagesAPI.newID()
    let model: String
    private var block: (index: Int, kind: String, chatIndex: Int?)?
    private var blocks = 0
    private var finish: String?
    private(set) var usage: JSONValue?
    private(set) var streamedText = ""

    init(model: String) { self.model = model }

    mutating func start(inputTokens: Int) -> [Event] {
        let message: JSONValue = .object(["id": .string(id), "type": .string("message"), "role": .string("assistant"), "model": .string(model),
                                          "content": .array([]), "stop_reason": .null, "stop_sequence": .null,
                                          "usage": .object(["input_tokens": .number(inputTokens), "output_tokens": .number(1)])])
        return [Event(type: "message_start", data: .object(["type": .string("message_start"), "message": message])),
                Event(type: "ping", data: .object(["type": .string("ping")]))]
    }

    private mutating func close() -> [Event] {
        guard let open = block else { return [] }
        block = nil
        return [Event(type: "content_block_stop", data: .object(["type": .string("content_block_stop"), "index": .number(open.index)]))]
    }

    mutating func feed(_ chunk: JSONValue) -> [Event] {
        var events: [Event] = []
        if let reported = chunk["usage"], reported != .null { usage = reported }
        guard let choice = chunk["choices"]?.arrayValue?.first else { return events }
        if let reason = choice["finish_reason"]?.stringValue { finish = reason }
        let delta = choice["delta"]
        if let text = delta?["content"]?.stringValue, !text.isEmpty {
            if block?.kind != "text" {
                events += close()
                block = (blocks, "text", nil)
                blocks += 1
                events.append(Event(type: "content_block_start", data: .object(["type": .string("content_block_start"), "index": .number(blocks - 1),
                                                                                 "content_block": .object(["type": .string("text"), "text": .string("")])])))
            }
            streamedText += text
            events.append(Event(type: "content_block_delta", data: .object(["type": .string("content_block_delta"), "index": .number(block?.index ?? 0),
                                                                             "delta": .object(["type": .string("text_delta"), "text": .string(text)])])))
        }
        for call in delta?["tool_calls"]?.arrayValue ?? [] {
            let slot = call["index"]?.intValue ?? 0
            if block?.kind != "tool" || block?.chatIndex != slot {
                events += close()
                block = (blocks, "tool", slot)
                blocks += 1
                let start: JSONValue = .object(["type": .string("tool_use"), "id": call["id"] ?? .string("toolu_\(slot)"),
                                                "name": call["function"]?["name"] ?? .string(""), "input": .object([:])])
                events.append(Event(type: "content_block_start", data: .object(["type": .string("content_block_start"), "index": .number(blocks - 1),
                                                                                 "content_block": start])))
            }
            if let piece = call["function"]?["arguments"]?.stringValue, !piece.isEmpty {
                streamedText += piece
                events.append(Event(type: "content_block_delta", data: .object(["type": .string("content_block_delta"), "index": .number(block?.index ?? 0),
                                                                                 "delta": .object(["type": .string("input_json_delta"), "partial_json": .string(piece)])])))
            }
        }
        return events
    }

    mutating func finish(outputTokens fallback: Int) -> [Event] {
        var events = close()
        let output = usage?["completion_tokens"].count() ?? fallback
        events.append(Event(type: "message_delta", data: .object(["type": .string("message_delta"),
                                                                   "delta": .object(["stop_reason": .string(MessagesAPI.stopReason(finish)), "stop_sequence": .null]),
                                                                   "usage": .object(["output_tokens": .number(output)])])))
        events.append(Event(type: "message_stop", data: .object(["type": .string("message_stop")])))
        return events
    }

    mutating func failed(_ message: String) -> [Event] {
        close() + [Event(type: "error", data: .object(["type": .string("error"), "error": .object(["type": .string("api_error"), "message": .string(message)])]))]
    }
}
