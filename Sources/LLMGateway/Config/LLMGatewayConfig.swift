import Foundation
import Shared

/// The `llm-gateway` part of a tunneler's `hosts:` entry: the providers (and their keys, which
/// live only here) and the models each serves, with prices.
public struct LLMGatewayConfig: Codable, Sendable, Equatable {
    public var providers: [ProviderConfig]
    /// One attempt's limit; retries and fallbacks get their own.
    public var timeoutMs: Int?
    public var retries: Int?

    enum CodingKeys: String, CodingKey {
        case providers, retries
        case timeoutMs = "timeout_ms"
    }

    public init(providers: [ProviderConfig], timeoutMs: Int? = nil, retries: Int? = nil) {
        self.providers = providers
        self.timeoutMs = timeoutMs
        self.retries = retries
    }

    public func problem() -> String? {
        if providers.isEmpty { return "an llm-gateway needs at least one provider" }
        var names = Set<String>(), models = Set<String>()
        for provider in providers {
            if let problem = provider.problem() { return problem }
            if !names.insert(provider.name).inserted { return "two providers are named '\(provider.name)'" }
            for model in provider.models where !models.insert(model.name).inserted {
                return "model '\(model.name)' is offered by two providers; give one a different name (its upstream id goes in 'upstream')"
            }
        }
        return nil
    }
}

public struct ProviderConfig: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case openai, azureOpenAI = "azure-openai", anthropic, bedrock, vertex, ollama, mock
    }

    public var name: String
    public var type: Kind
    public var baseURL: String?
    public var apiKeyEnv: String?
    public var apiKeyFile: String?
    /// Azure OpenAI: the `api-version` query parameter.
    public var apiVersion: String?
    /// Anthropic: the `anthropic-version` header.
    public var anthropicVersion: String?
    /// Bedrock and Vertex.
    public var region: String?
    public var accessKeyEnv: String?
    public var secretKeyEnv: String?
    public var sessionTokenEnv: String?
    public var project: String?
    public var location: String?
    public var serviceAccountFile: String?
    public var tokenURL: String?
    /// Data sent here stays inside the enterprise (a local Ollama, the mock).
    public var `private`: Bool?
    /// Used only while it answers (a local Ollama that may not be running): probed at start and
    /// every 30 s; its models are absent while it does not answer.
    public var optional: Bool?
    public var models: [ModelConfig]

    enum CodingKeys: String, CodingKey {
        case name, type, region, project, location, models
        case baseURL = "base_url"
        case apiKeyEnv = "api_key_env"
        case apiKeyFile = "api_key_file"
        case apiVersion = "api_version"
        case anthropicVersion = "anthropic_version"
        case accessKeyEnv = "access_key_env"
        case secretKeyEnv = "secret_key_env"
        case sessionTokenEnv = "session_token_env"
        case serviceAccountFile = "service_account_file"
        case tokenURL = "token_url"
        case `private`, optional
    }

    public init(name: String, type: Kind, baseURL: String? = nil, models: [ModelConfig]) {
        self.name = name
        self.type = type
        self.baseURL = baseURL
        self.models = models
    }

    var isPrivate: Bool { self.private ?? (type == .ollama || type == .mock) }

    func problem() -> String? {
        if models.isEmpty { return "provider '\(name)' lists no models" }
        switch type {
        case .azureOpenAI where baseURL == nil: return "provider '\(name)' (azure-openai) needs base_url (https://RESOURCE.openai.azure.com)"
        case .vertex where project == nil || serviceAccountFile == nil: return "provider '\(name)' (vertex) needs project and service_account_file"
        case .bedrock where accessKeyEnv == nil || secretKeyEnv == nil: return "provider '\(name)' (bedrock) needs access_key_env and secret_key_env"
        default: break
        }
        if let baseURL, URL(string: baseURL)?.host == nil { return "provider '\(name)': base_url '\(baseURL)' is not a URL" }
        return nil
    }

    /// The API key, read from the environment or a file now (so a rotated key is picked up).
    func apiKey() throws -> String? {
        if let variable = apiKeyEnv {
            guard let value = ProcessInfo.processInfo.environment[variable] else {
                throw ProviderError.configuration("provider '\(name)': environment variable \(variable) is not set")
            }
            return value
        }
        if let file = apiKeyFile { return try Files.read(file).trimmingCharacters(in: .whitespacesAndNewlines) }
        return nil
    }

    func environment(_ variable: String?) -> String? { variable.flatMap { ProcessInfo.processInfo.environment[$0] } }
}

public struct ModelConfig: Codable, Sendable, Equatable {
    /// What callers ask for (and `/v1/models` lists).
    public var name: String
    /// The provider's id for it (Azure: the deployment), when it differs.
    public var upstream: String?
    public var inputPerMTok: Double?
    public var outputPerMTok: Double?
    /// Prices of cached input, cache writes and reasoning, where the provider prices them apart.
    public var cachedInputPerMTok: Double?
    public var cacheWritePerMTok: Double?
    public var reasoningPerMTok: Double?
    /// The most output the model can give (the default when a caller sets no limit and the
    /// provider needs one).
    public var maxOutputTokens: Int?
    /// An embeddings model (`/v1/embeddings`).
    public var embeddings: Bool?

    enum CodingKeys: String, CodingKey {
        case name, upstream, embeddings
        case inputPerMTok = "input_per_mtok"
        case outputPerMTok = "output_per_mtok"
        case cachedInputPerMTok = "cached_input_per_mtok"
        case cacheWritePerMTok = "cache_write_per_mtok"
        case reasoningPerMTok = "reasoning_per_mtok"
        case maxOutputTokens = "max_output_tokens"
    }

    public init(name: String, upstream: String? = nil, inputPerMTok: Double? = nil, outputPerMTok: Double? = nil, embeddings: Bool? = nil) {
        self.name = name; self.upstream = upstream; self.inputPerMTok = inputPerMTok; self.outputPerMTok = outputPerMTok; self.embeddings = embeddings
    }

    var upstreamID: String { upstream ?? name }

    func cost(input: Int, output: Int) -> Double { cost(TokenUsage(input: input, output: output)) }
}
