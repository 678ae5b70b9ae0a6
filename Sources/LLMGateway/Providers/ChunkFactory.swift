import Foundation
import Shared

/// The OpenAI `chat.completion.chunk` objects every adapter's stream yields: one per delta, and
/// a last one with no choices that carries the usage.
struct ChunkFactory: Sendable {
    var id: String
    let model: String
    let created = JSONValue.number(Double(Int(Date().timeIntervalSince1970)))

    func delta(_ delta: JSONValue, finish: String? = nil) -> JSONValue {
        .object(["id": .string(id), "object": .string("chat.completion.chunk"), "created": created, "model": .string(model),
                 "choices": .array([.object(["index": .number(0), "delta": delta, "finish_reason": finish.map { .string($0) } ?? .null])])])
    }

    func usage(_ usage: JSONValue) -> JSONValue {
        .object(["id": .string(id), "object": .string("chat.completion.chunk"), "created": created, "model": .string(model),
                 "choices": .array([]), "usage": usage])
    }
}
