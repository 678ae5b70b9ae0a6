import Foundation
import GatewayKit
import Shared

/// Picks the ordered list of models a request may go to. A concrete model name is taken as
/// asked (kept private when the request must stay private); an alias (`auto` by default) goes
/// through the cascade — heuristics, then the nearest labelled example by embedding, then an
/// optional LLM classifier — to a class (cost, latency, sensitive, quality) whose models the
/// policy lists in order.
struct RoutingCascade: Sendable {
    struct Decision: Sendable, Equatable {
        var models: [String]
        var routeClass: String?
        var reason: String
    }

    struct ModelInfo: Sendable {
        let name: String
        let isPrivate: Bool
        let outputPrice: Double
    }

    let models: [String: ModelInfo]
    let policy: LLMPolicy?
    /// Labelled examples, embedded once per policy by the built-in embedder.
    let examples: [(vector: [Float], label: String)]
    /// The same examples embedded by the policy's embeddings model, when it has one.
    let providerExamples: [(vector: [Float], label: String)]

    init(models: [String: ModelInfo], policy: LLMPolicy?, providerExamples: [(vector: [Float], label: String)] = []) {
        self.models = models
        self.policy = policy
        self.providerExamples = providerExamples
        examples = Self.examples(policy).map { (Embedder.embed($0.text), $0.class) }
    }

    static func examples(_ policy: LLMPolicy?) -> [LLMPolicy.Example] { policy?.routing?.examples ?? defaultExamples }

    static let defaultExamples: [LLMPolicy.Example] = [
        .init(text: "Refactor this function and explain the bug in the stack trace", class: "quality"),
        .init(text: "Write a detailed analysis comparing these two architectures", class: "quality"),
        .init(text: "Prove this theorem step by step", class: "quality"),
        .init(text: "Summarize this paragraph in one sentence", class: "cost"),
        .init(text: "Translate this short text to French", class: "cost"),
        .init(text: "Classify this ticket as bug, question or feature request", class: "cost"),
        .init(text: "Autocomplete the next few words quickly", class: "latency"),
        .init(text: "Reply yes or no right away", class: "latency"),
        .init(text: "Patient record with diagnosis and insurance number", class: "sensitive"),
        .init(text: "Salary, bank account and home address of the employee", class: "sensitive"),
    ]

    func aliasTable(_ name: String) -> [String: [String]]? {
        if let table = policy?.routing?.aliases?[name] { return table }
        guard name == "auto" else { return nil }
        // Without a policy, `auto` ranks every chat model: cheapest first, private ones for sensitive data.
        let chat = models.values.sorted { ($0.outputPrice, $0.name) < ($1.outputPrice, $1.name) }
        let all = chat.map(\.name)
        return ["cost": all, "latency": all, "quality": chat.reversed().map(\.name), "sensitive": chat.filter(\.isPrivate).map(\.name)]
    }

    /// `classify` is the optional third stage (an LLM asked for the class), used only when the
    /// first two do not decide.
    func decide(model requested: String, request: JSONValue, privateOnly: Bool, hint: String?,
                classify: (@Sendable (String) async -> String?)?, embed: (@Sendable (String) async -> [Float]?)? = nil) async -> Decision {
        guard let table = aliasTable(requested) else {
            if privateOnly, let info = models[requested], !info.isPrivate {
                let fallback = (aliasTable("auto")?["sensitive"] ?? []).filter { models[$0]?.isPrivate == true }
                return Decision(models: fallback, routeClass: "sensitive",
                                reason: "personal data found: '\(requested)' is not private, kept on \(fallback.first ?? "no private model")")
            }
            return Decision(models: [requested], routeClass: nil, reason: "model named by the caller")
        }
        let text = ChatText.prompt(request)
        var routeClass: String?
        var reason = ""
        if privateOnly {
            routeClass = "sensitive"; reason = "heuristic: personal data found"
        } else if let hint, LLMPolicy.classes.contains(hint) {
            routeClass = hint; reason = "hint: caller asked for \(hint)"
        } else if Self.looksLikeCode(text) {
            routeClass = "quality"; reason = "heuristic: code in the prompt"
        } else if text.count > 6_000 {
            routeClass = "quality"; reason = "heuristic: long prompt (\(text.count) characters)"
        }
        if routeClass == nil, !examples.isEmpty {
            var vector = Embedder.embed(text)
            var labelled = examples
            var source = "embedding"
            if !providerExamples.isEmpty, let embed, let remote = await embed(text) {
                vector = remote; labelled = providerExamples; source = "embedding (\(policy?.routing?.embeddingModel ?? "model"))"
            }
            if let best = labelled.max(by: { Embedder.cosine(vector, $0.vector) < Embedder.cosine(vector, $1.vector) }) {
                let similarity = Embedder.cosine(vector, best.vector)
                if similarity >= 0.3 {
                    routeClass = best.label; reason = String(format: "%@: nearest example is %@ (%.2f)", source, best.label, similarity)
                }
            }
        }
        if routeClass == nil, let classify, let answer = await classify(text), LLMPolicy.classes.contains(answer) {
            routeClass = answer; reason = "classifier: \(answer)"
        }
        let chosen = routeClass ?? "cost"
        if reason.isEmpty { reason = "default: cost" }
        var list = table[chosen] ?? table["cost"] ?? []
        if privateOnly || chosen == "sensitive" { list = list.filter { models[$0]?.isPrivate == true } }
        return Decision(models: list, routeClass: chosen, reason: reason)
    }

    static func looksLikeCode(_ text: String) -> Bool {
        if text.contains("```") { return true }
        let markers = ["func ", "def ", "class ", "import ", "#include", "SELECT ", "=> {", "();", "public static", "fn main"]
        return markers.filter { text.contains($0) }.count >= 2
    }
}
