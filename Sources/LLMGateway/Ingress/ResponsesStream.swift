import Foundation
import Shared

/// Chat completion chunks → the Responses API's typed stream: `response.created`,
/// `response.in_progress`, then for the text an output message (`output_item.added`,
/// `content_part.added`, `output_text.delta`…, `output_text.done`, `content_part.done`,
/// `output_item.done`) and for each function call its own item (`function_call_arguments.delta`…,
/// `.done`), and `response.completed` with the usage. Every event carries its `sequence_number`.
struct ResponsesStream {
    struct Event { let type: String; let data: JSONValue }

    let id: String
    let request: JSONValue
    let model: String
    let created: Int
    private var sequence = 0
    private var outputs = 0
    private var message: (id: String, index: Int, text: String)?
    private var calls: [Int: (id: String, callID: String, name: String, arguments: String, index: Int)] = [:]
    private(set) var usage: JSONValue?
    private var finish: String?

    init(id: String, request: JSONValue, model: String, created: Int = Int(Date().timeIntervalSince1970)) {
        self.id = id; self.request = request; self.model = model; self.created = created
    }

    private mutating func event(_ type: String, _ fields: [String: JSONValue]) -> Event {
        var data = fields
        data["type"] = .string(type)
        data["sequence_number"] = .number(sequence)
        sequence += 1
        return Event(type: type, data: .object(data))
    }

    private func snapshot(status: String, output: [JSONValue], usage: JSONValue?) -> JSONValue {
        ResponsesAPI.response(id: id, request: request, model: model, created: created, status: status, output: output, usage: usage,
                              finish: status == "completed" ? finish : nil)
    }

    mutating func start() -> [Event] {
        let response = snapshot(status: "in_progress", output: [], usage: nil)
        return [event("response.created", ["response": response]), event("response.in_progress", ["response": response])]
    }

    mutating func feed(_ chunk: JSONValue) -> [Event] {
        var events: [Event] = []
        if let reported = chunk["usage"], reported != .null { usage = ResponsesAPI.usage(reported) }
        guard let choice = chunk["choices"]?.arrayValue?.first else { return events }
        if let reason = choice["finish_reason"]?.stringValue { finish = reason }
        let delta = choice["delta"]
        if let text = delta?["content"]?.stringValue, !text.isEmpty {
            if message == nil {
                let itemID = ResponsesAPI.newID("msg")
                message = (itemID, outputs, "")
                outputs += 1
                events.append(event("response.output_item.added", ["output_index": .number(outputs - 1),
                                                                     "item": ResponsesAPI.messageItem(id: itemID, text: nil, status: "in_progress")]))
                events.append(event("response.content_part.added", ["item_id": .string(itemID), "output_index": .number(outputs - 1), "content_index": .number(0),
                                                                     "part": .object(["type": .string("output_text"), "text": .string(""), "annotations": .array([])])]))
            }
            if let current = message {
                message?.text += text
                events.append(event("response.output_text.delta", ["item_id": .string(current.id), "output_index": .number(current.index),
                                                                     "content_index": .number(0), "delta": .string(text), "logprobs": .array([])]))
            }
        }
        for call in delta?["tool_calls"]?.arrayValue ?? [] {
            let slot = call["index"]?.intValue ?? 0
            if calls[slot] == nil {
                let itemID = ResponsesAPI.newID("fc")
                let callID = call["id"]?.stringValue ?? ResponsesAPI.newID("call")
                let name = call["function"]?["name"]?.stringValue ?? ""
                calls[slot] = (itemID, callID, name, "", outputs)
                outputs += 1
                events.append(event("response.output_item.added", ["output_index": .number(outputs - 1),
                    "item": ResponsesAPI.functionCallItem(id: itemID, callID: callID, name: name, arguments: "", status: "in_progress")]))
            }
            if let piece = call["function"]?["arguments"]?.stringValue, !piece.isEmpty, let current = calls[slot] {
                calls[slot]?.arguments += piece
                events.append(event("response.function_call_arguments.delta", ["item_id": .string(current.id), "output_index": .number(current.index),
                                                                                 "delta": .string(piece)]))
            }
        }
        return events
    }

    /// The output items as they stand (for storing with the response).
    var output: [JSONValue] {
        var items: [(Int, JSONValue)] = []
        if let message { items.append((message.index, ResponsesAPI.messageItem(id: message.id, text: message.text, status: "completed"))) }
        for call in calls.values {
            items.append((call.index, ResponsesAPI.functionCallItem(id: call.id, callID: call.callID, name: call.name,
                                                                    arguments: call.arguments.isEmpty ? "{}" : call.arguments, status: "completed")))
        }
        return items.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The text streamed so far (for estimating usage when the provider reported none).
    var streamedText: String { (message?.text ?? "") + calls.values.map(\.arguments).joined() }

    mutating func finish(usage fallback: JSONValue?) -> [Event] {
        var events: [Event] = []
        if let message {
            let part: JSONValue = .object(["type": .string("output_text"), "text": .string(message.text), "annotations": .array([])])
            events.append(event("response.output_text.done", ["item_id": .string(message.id), "output_index": .number(message.index),
                                                               "content_index": .number(0), "text": .string(message.text), "logprobs": .array([])]))
            events.append(event("response.content_part.done", ["item_id": .string(message.id), "output_index": .number(message.index),
                                                                "content_index": .number(0), "part": part]))
            events.append(event("response.output_item.done", ["output_index": .number(message.index),
                                                               "item": ResponsesAPI.messageItem(id: message.id, text: message.text, status: "completed")]))
        }
        for call in calls.values.sorted(by: { $0.index < $1.index }) {
            let arguments = call.arguments.isEmpty ? "{}" : call.arguments
            events.append(event("response.function_call_arguments.done", ["item_id": .string(call.id), "output_index": .number(call.index),
                                                                           "arguments": .string(arguments)]))
            events.append(event("response.output_item.done", ["output_index": .number(call.index),
                "item": ResponsesAPI.functionCallItem(id: call.id, callID: call.callID, name: call.name, arguments: arguments, status: "completed")]))
        }
        events.append(event("response.completed", ["response": snapshot(status: "completed", output: output, usage: usage ?? fallback)]))
        return events
    }

    mutating func failed(_ message: String) -> [Event] {
        var response = snapshot(status: "failed", output: output, usage: usage)
        response = response.setting("error", .object(["code": .string("server_error"), "message": .string(message)]))
        return [event("response.failed", ["response": response])]
    }
}
