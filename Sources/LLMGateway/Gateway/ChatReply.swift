import Foundation
import Shared

/// What the HTTP layer sends back for one API call.
enum ChatReply: Sendable {
    case json(JSONValue, headers: [(String, String)])
    /// SSE: each element is one `data:` event (a chunk); `[DONE]` follows the last.
    case stream(AsyncThrowingStream<JSONValue, Error>, headers: [(String, String)])
    /// An Anthropic model's own answer to a Messages request sent as it was (no translation).
    case native(JSONValue, headers: [(String, String)])
    /// An Anthropic model's own stream: (event type, data) as it sent them.
    case nativeStream(AsyncThrowingStream<(String, JSONValue), Error>, headers: [(String, String)])
    case failure(APIError)
}

/// The API a request came in by (named in its audit record).
enum Ingress: String, Sendable {
    case chat = "chat.completions"
    case responses
    case messages
    case embeddings
}

/// A Messages request as the caller sent it, with the headers that go with it
/// (`anthropic-version`, `anthropic-beta`): what an Anthropic model receives untouched.
struct NativeMessages: Sendable {
    let body: JSONValue
    let headers: [(String, String)]
}

/// An error in OpenAI's shape, with a message that says what to do.
struct APIError: Error, Sendable {
    let status: Int
    let message: String
    let type: String
    let code: String?

    var body: JSONValue {
        .object(["error": .object(["message": .string(message), "type": .string(type), "param": .null, "code": code.map { .string($0) } ?? .null])])
    }

    static func invalid(_ message: String, code: String? = nil) -> APIError { APIError(status: 400, message: message, type: "invalid_request_error", code: code) }
}
