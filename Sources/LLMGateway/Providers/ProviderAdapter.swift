import Foundation
import Shared

/// Speaks one provider's wire format. Requests and results are OpenAI's chat-completions shapes
/// (the gateway's own API); each adapter translates them both ways, streams included.
protocol ProviderAdapter: Sendable {
    var config: ProviderConfig { get }
    /// A non-streaming completion: an OpenAI `chat.completion` object.
    func complete(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue
    /// A streaming completion: OpenAI `chat.completion.chunk` objects, the last one carrying usage.
    func stream(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> AsyncThrowingStream<JSONValue, Error>
    /// OpenAI's embeddings response for `input`.
    func embed(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue
    /// Why this provider cannot honor `request` as asked (a parameter it has no equivalent for),
    /// or nil. The gateway then routes elsewhere or refuses with a 400; nothing is dropped silently.
    func unsupported(_ request: JSONValue, model: ModelConfig) -> String?
}

/// Parameters of OpenAI's chat API, and what providers without them make of each.
enum ChatParameters {
    /// `n` greater than one: several choices in one answer.
    static func choices(_ request: JSONValue) -> Int { request["n"]?.intValue ?? 1 }
    static func wantsLogprobs(_ request: JSONValue) -> Bool { request["logprobs"]?.boolValue == true || request["top_logprobs"] != nil }

    /// The reasons a provider with none of `n`, logprobs and `seed` (`supportsSeed` false) cannot take `request`.
    static func common(_ request: JSONValue, provider: String, supportsSeed: Bool) -> String? {
        if choices(request) > 1 { return "\(provider) returns one choice per request (n = \(choices(request)))" }
        if wantsLogprobs(request) { return "\(provider) does not return logprobs" }
        if !supportsSeed, request["seed"] != nil, request["seed"] != .null { return "\(provider) takes no seed" }
        return nil
    }

    /// A reasoning budget in tokens for `reasoning_effort`.
    static func thinkingBudget(_ effort: String?) -> Int? {
        switch effort {
        case "minimal", "low": return 1024
        case "medium": return 4096
        case "high": return 16384
        default: return nil
        }
    }
}

extension ProviderAdapter {
    func unsupported(_ request: JSONValue, model: ModelConfig) -> String? { nil }

    func embed(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        throw ProviderError.unsupported("provider '\(config.name)' (\(config.type.rawValue)) has no embeddings API here")
    }
}

/// Why a provider call failed, and whether trying again (or elsewhere) can help.
enum ProviderError: Error, CustomStringConvertible {
    /// The provider answered with an HTTP error.
    case http(status: Int, message: String)
    case timeout(String)
    case unreachable(String)
    case malformed(String)
    case unsupported(String)
    case configuration(String)
    /// The provider refused the gateway's own key (401/403): an operator's problem, not the caller's.
    case credentials(String)

    var retryable: Bool { countsAgainstProvider }

    /// Whether the failure says the provider is unwell (5xx, 429, timeouts, unreachable) — what
    /// opens its breaker. A 4xx is the request's fault: one caller's bad requests must not take
    /// a provider away from everyone.
    var countsAgainstProvider: Bool {
        switch self {
        case .http(let status, _): return status == 429 || status >= 500
        case .timeout, .unreachable: return true
        default: return false
        }
    }

    var description: String {
        switch self {
        case .http(let status, let message): return "HTTP \(status): \(message)"
        case .timeout(let what): return "timed out: \(what)"
        case .unreachable(let what): return "unreachable: \(what)"
        case .malformed(let what): return "malformed answer: \(what)"
        case .unsupported(let what): return what
        case .configuration(let what): return what
        case .credentials(let what): return what
        }
    }
}

/// Ids for tool calls of providers that give none (Gemini, Ollama): unique, so that a tool
/// result later in the conversation names one call — `call_0` in two turns would be ambiguous.
enum ToolCallID {
    static func make() -> String { "call_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(24).lowercased() }
}

/// An image given inline as a `data:` URL, as providers that take bytes want it.
struct InlineImage: Equatable {
    let mediaType: String
    let base64: String

    init?(dataURL url: String) {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ","), let semicolon = url.firstIndex(of: ";"), semicolon < comma else { return nil }
        mediaType = String(url[url.index(url.startIndex, offsetBy: 5)..<semicolon])
        base64 = String(url[url.index(after: comma)...])
        guard ["image/png", "image/jpeg", "image/gif", "image/webp"].contains(mediaType) else { return nil }
    }

    /// Bedrock's name for it: png, jpeg, gif or webp.
    var format: String { String(mediaType.dropFirst("image/".count)) }
}

/// Structured output for providers without a JSON-schema mode (Anthropic, Bedrock): the schema
/// becomes the input schema of one tool the model is made to call, and that call's input is the
/// answer's text. Exact to the schema, unlike an instruction in the prompt.
enum StructuredOutput {
    static let toolName = "portless_json_response"

    /// The JSON schema a request asks its answer to follow, if any.
    static func schema(_ request: JSONValue) -> JSONValue? {
        guard request["response_format"]?["type"]?.stringValue == "json_schema" else { return nil }
        return request["response_format"]?["json_schema"]?["schema"] ?? .object(["type": .string("object")])
    }
}
