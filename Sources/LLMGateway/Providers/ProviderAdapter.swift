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
}

extension ProviderAdapter {
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
