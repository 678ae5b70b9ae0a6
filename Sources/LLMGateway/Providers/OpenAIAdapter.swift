import Foundation
import GatewayKit
import Shared

/// OpenAI's chat completions and embeddings, and Azure OpenAI's (deployment URLs, `api-version`,
/// `api-key`): the gateway's own shapes, so requests pass with the model swapped in.
struct OpenAIAdapter: ProviderAdapter {
    let config: ProviderConfig
    private var http: ProviderHTTP { ProviderHTTP(provider: config.name) }
    private var azure: Bool { config.type == .azureOpenAI }

    private func url(_ operation: String, model: ModelConfig) -> String {
        if azure {
            let base = (config.baseURL ?? "").trimmingTrailingSlash
            return "\(base)/openai/deployments/\(model.upstreamID)/\(operation)?api-version=\(config.apiVersion ?? "2024-10-21")"
        }
        return "\((config.baseURL ?? "https://api.openai.com/v1").trimmingTrailingSlash)/\(operation)"
    }

    private func headers() throws -> [(String, String)] {
        guard let key = try config.apiKey() else { return [] }
        return azure ? [("api-key", key)] : [("Authorization", "Bearer \(key)")]
    }

    private func body(_ request: JSONValue, model: ModelConfig, stream: Bool) -> JSONValue {
        var body = request.setting("model", azure ? nil : .string(model.upstreamID))
        body = body.setting("stream", stream ? .bool(true) : nil)
        if stream { body = body.setting("stream_options", .object(["include_usage": .bool(true)])) } else { body = body.setting("stream_options", nil) }
        return body
    }

    func unsupported(_ request: JSONValue, model: ModelConfig) -> String? {
        request["top_k"] != nil ? "\(config.type.rawValue) takes no top_k" : nil
    }

    func complete(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let call = http.request(url("chat/completions", model: model), headers: try headers(), body: body(request, model: model, stream: false).encoded())
        return try await http.json(call, deadline: deadline)
    }

    func stream(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> AsyncThrowingStream<JSONValue, Error> {
        let call = http.request(url("chat/completions", model: model), headers: try headers(), body: body(request, model: model, stream: true).encoded())
        let response = try await http.send(call, deadline: deadline)
        let events = response.body.serverSentEvents()
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in events {
                        if event == Data("[DONE]".utf8) { break }
                        continuation.yield(try JSONValue.parse(event))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    func embed(_ request: JSONValue, model: ModelConfig, deadline: Duration) async throws -> JSONValue {
        let body = request.setting("model", azure ? nil : .string(model.upstreamID))
        return try await http.json(http.request(url("embeddings", model: model), headers: try headers(), body: body.encoded()), deadline: deadline)
    }
}

extension String {
    var trimmingTrailingSlash: String { hasSuffix("/") ? String(dropLast()) : self }
}
