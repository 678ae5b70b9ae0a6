import Foundation
import Shared

/// What the HTTP layer sends back for one API call.
enum ChatReply: Sendable {
    case json(JSONValue, headers: [(String, String)])
    /// SSE: each element is one `data:` event (a chunk); `[DONE]` follows the last.
    case stream(AsyncThrowingStream<JSONValue, Error>, headers: [(String, String)])
    case failure(APIError)
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
