import Foundation
import Shared

/// OpenAI's Responses API (`POST /v1/responses`) over the gateway's chat pipeline: a request
/// becomes a chat request (so routing, budgets, guardrails, audit and every provider adapter
/// apply unchanged), and the completion — or its stream of chunks — becomes a Response object or
/// the typed event sequence the Responses API streams.
enum ResponsesAPI {
    /// The request as a chat request, after `history` (the conversation of `previous_response_id`).
    /// Also returns this request's input as items, to be stored with the response.
    static func chatRequest(_ request: JSONValue, history: [JSONValue]) -> Result<(chat: JSONValue, input: [JSONValue]), APIError> {
        guard let model = request["model"]?.stringValue, !model.isEmpty else {
            return .failure(.invalid("'model' is required: a model from GET /v1/models, or 'auto'", code: "missing_model"))
        }
        let input: [JSONValue]
        switch request["input"] {
        case .string(let text)?: input = [.object(["type": .string("message"), "role": .string("user"), "content": .string(text)])]
        case .array(let items)?: input = items
        case nil: return .failure(.invalid("'input' is required: a string or a list of input items", code: "missing_input"))
        default: return .failure(.invalid("'input' must be a string or a list of input items", code: "invalid_input"))
        }
        var messages: [JSONValue] = []
        if let instructions = request["instructions"]?.stringValue {
            messages.append(.object(["role": .string("system"), "content": .string(instructions)]))
        }
        switch Self.messages(history + input) {
        case .failure(let error): return .failure(error)
        case .success(let converted): messages += converted
        }
        guard !messages.isEmpty else { return .failure(.invalid("'input' holds nothing to answer", code: "missing_input")) }
        var chat: [String: JSONValue] = ["model": .string(model), "messages": .array(messages)]
        for key in ["temperature", "top_p", "parallel_tool_calls", "user", "stream"] {
            if let value = request[key] { chat[key] = value }
        }
        if let limit = request["max_output_tokens"] { chat["max_completion_tokens"] = limit }
        if let effort = request["reasoning"]?["effort"] { chat["reasoning_effort"] = effort }
        if let tools = request["tools"]?.arrayValue, !tools.isEmpty {
            var converted: [JSONValue] = []
            for tool in tools {
                guard tool["type"]?.stringValue == "function", let name = tool["name"] else {
                    return .failure(.invalid("tool type '\(tool["type"]?.stringValue ?? "?")' is not served by this gateway; use function tools", code: "unsupported_tool"))
                }
                var function: [String: JSONValue] = ["name": name]
                for key in ["description", "parameters", "strict"] { if let value = tool[key], value != .null { function[key] = value } }
                converted.append(.object(["type": .string("function"), "function": .object(function)]))
            }
            chat["tools"] = .array(converted)
        }
        switch request["tool_choice"] {
        case .string(let mode)?: chat["tool_choice"] = .string(mode)
        case .object(let choice)? where choice["type"]?.stringValue == "function":
            chat["tool_choice"] = .object(["type": .string("function"), "function": .object(["name": choice["name"] ?? .string("")])])
        default: break
        }
        switch request["text"]?["format"] {
        case let format? where format["type"]?.stringValue == "json_schema":
            var schema: [String: JSONValue] = ["name": format["name"] ?? .string("response"), "schema": format["schema"] ?? .object([:])]
            if let strict = format["strict"] { schema["strict"] = strict }
            chat["response_format"] = .object(["type": .string("json_schema"), "json_schema": .object(schema)])
        case let format? where format["type"]?.stringValue == "json_object":
            chat["response_format"] = .object(["type": .string("json_object")])
        default: break
        }
        return .success((.object(chat), input))
    }

    /// Input items (messages, function calls and their outputs) as chat messages.
    static func messages(_ items: [JSONValue]) -> Result<[JSONValue], APIError> {
        var messages: [JSONValue] = []
        for item in items {
            let type = item["type"]?.stringValue ?? (item["role"] != nil ? "message" : "")
            switch type {
            case "message":
                let role = item["role"]?.stringValue ?? "user"
                if role == "assistant" {
                    messages.append(.object(["role": .string("assistant"), "content": .string(text(of: item["content"]))]))
                } else {
                    messages.append(.object(["role": .string(role == "developer" ? "system" : role), "content": userContent(item["content"])]))
                }
            case "function_call":
                let call: JSONValue = .object(["id": item["call_id"] ?? .string(""), "type": .string("function"),
                                               "function": .object(["name": item["name"] ?? .string(""), "arguments": item["arguments"] ?? .string("{}")])])
                // Consecutive calls belong to one assistant turn.
                if let last = messages.last, last["role"]?.stringValue == "assistant", case .array(let calls)? = last["tool_calls"] {
                    messages[messages.count - 1] = last.setting("tool_calls", .array(calls + [call]))
                } else if let last = messages.last, last["role"]?.stringValue == "assistant", last["tool_calls"] == nil {
                    messages[messages.count - 1] = last.setting("tool_calls", .array([call]))
                } else {
                    messages.append(.object(["role": .string("assistant"), "content": .null, "tool_calls": .array([call])]))
                }
            case "function_call_output":
                let output = item["output"]?.stringValue ?? String(decoding: (item["output"] ?? .string("")).encoded(), as: UTF8.self)
                messages.append(.object(["role": .string("tool"), "tool_call_id": item["call_id"] ?? .string(""), "content": .string(output)]))
            case "reasoning":
                continue
            default:
                return .failure(.invalid("input item type '\(type)' is not served by this gateway (messages, function_call, function_call_output)", code: "unsupported_input"))
            }
        }
        return .success(messages)
    }

    private static func text(of content: JSONValue?) -> String {
        if let text = content?.stringValue { return text }
        return (content?.arrayValue ?? []).compactMap { $0["text"]?.stringValue }.joined()
    }

    /// A user's content: text, or parts (text and images) as chat parts.
    private static func userContent(_ content: JSONValue?) -> JSONValue {
        if let text = content?.stringValue { return .string(text) }
        let parts: [JSONValue] = (content?.arrayValue ?? []).compactMap { part in
            switch part["type"]?.stringValue {
            case "input_text", "output_text", "text": return .object(["type": .string("text"), "text": part["text"] ?? .string("")])
            case "input_image":
                guard let url = part["image_url"]?.stringValue else { return nil }
                return .object(["type": .string("image_url"), "image_url": .object(["url": .string(url)])])
            default: return nil
            }
        }
        return .array(parts)
    }

    // MARK: responses

    static func newID(_ prefix: String) -> String { prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }

    /// The output items of a chat completion: a message (if it has text), then its function calls.
    static func outputItems(of completion: JSONValue) -> [JSONValue] {
        let message = completion["choices"]?.arrayValue?.first?["message"]
        var items: [JSONValue] = []
        if let text = message?["content"]?.stringValue, !text.isEmpty {
            items.append(messageItem(id: newID("msg"), text: text, status: "completed"))
        }
        for call in message?["tool_calls"]?.arrayValue ?? [] {
            items.append(functionCallItem(id: newID("fc"), callID: call["id"]?.stringValue ?? newID("call"),
                                          name: call["function"]?["name"]?.stringValue ?? "", arguments: call["function"]?["arguments"]?.stringValue ?? "{}",
                                          status: "completed"))
        }
        return items
    }

    static func messageItem(id: String, text: String?, status: String) -> JSONValue {
        let content: [JSONValue] = text.map { [.object(["type": .string("output_text"), "text": .string($0), "annotations": .array([])])] } ?? []
        return .object(["type": .string("message"), "id": .string(id), "status": .string(status), "role": .string("assistant"), "content": .array(content)])
    }

    static func functionCallItem(id: String, callID: String, name: String, arguments: String, status: String) -> JSONValue {
        .object(["type": .string("function_call"), "id": .string(id), "call_id": .string(callID), "name": .string(name),
                 "arguments": .string(arguments), "status": .string(status)])
    }

    /// Usage in the Responses shape, from chat usage.
    static func usage(_ usage: JSONValue?) -> JSONValue {
        let input = usage?["prompt_tokens"].count() ?? 0, output = usage?["completion_tokens"].count() ?? 0
        return .object([
            "input_tokens": .number(input), "output_tokens": .number(output), "total_tokens": .number(input + output),
            "input_tokens_details": .object(["cached_tokens": .number(usage?["prompt_tokens_details"]?["cached_tokens"].count() ?? 0)]),
            "output_tokens_details": .object(["reasoning_tokens": .number(usage?["completion_tokens_details"]?["reasoning_tokens"].count() ?? 0)]),
        ])
    }

    /// The Response object: what was asked (echoed as the API does) and what came out.
    static func response(id: String, request: JSONValue, model: String, created: Int, status: String, output: [JSONValue],
                         usage: JSONValue?, finish: String?) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "object": .string("response"), "created_at": .number(created), "status": .string(status),
            "model": .string(model), "output": .array(output), "parallel_tool_calls": request["parallel_tool_calls"] ?? .bool(true),
            "tool_choice": request["tool_choice"] ?? .string("auto"), "tools": request["tools"] ?? .array([]),
            "previous_response_id": request["previous_response_id"] ?? .null, "instructions": request["instructions"] ?? .null,
            "store": request["store"] ?? .bool(true), "temperature": request["temperature"] ?? .null, "top_p": request["top_p"] ?? .null,
            "max_output_tokens": request["max_output_tokens"] ?? .null, "metadata": request["metadata"] ?? .object([:]),
            "text": .object(["format": request["text"]?["format"] ?? .object(["type": .string("text")])]),
            "error": .null, "incomplete_details": .null,
        ]
        if let usage { object["usage"] = usage }
        if status == "completed" { object["completed_at"] = .number(Int(Date().timeIntervalSince1970)) }
        if finish == "length" {
            object["status"] = .string("incomplete")
            object["incomplete_details"] = .object(["reason": .string("max_output_tokens")])
        } else if finish == "content_filter" {
            object["status"] = .string("incomplete")
            object["incomplete_details"] = .object(["reason": .string("content_filter")])
        }
        return .object(object)
    }

    static func finishReason(of completion: JSONValue) -> String? { completion["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue }
}
