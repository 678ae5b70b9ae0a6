/// The data of an `llm-policy.v1` config attached to an LLM gateway's service: how `auto` (and
/// other aliases) route, what each caller may spend, and the guardrails.
///
/// ```yaml
/// routing:
///   aliases:
///     auto: {cost: [small], latency: [small], sensitive: [local-llama], quality: [large, small]}
///   examples: [{text: "Refactor this function", class: quality}]
///   embedding_model: embed           # optional: a /v1/embeddings model for the second stage
///   classifier_model: small          # optional third stage
/// budgets:
///   - {identity: "*", usd_per_day: 5}
///   - {team: support, usd_per_month: 200, requests_per_minute: 120}
///   - {project: apollo, tokens_per_minute: 200000}
/// guardrails:
///   pii: {action: private}           # block | redact | private
///   injection: {action: block}       # block | flag
///   topics: {deny: [weapons]}
/// projects:                          # who may bill which project (X-Portless-Project)
///   apollo: ["#team-apollo", "@release-bot"]
/// models:                            # which models and aliases each caller may use
///   - {identities: ["#agents"], allow: ["auto", "gpt-*"], deny: ["gpt-4o"]}
///   - {users: ["#finance"], allow: ["*"]}        # people an agent acts for
/// require_person: false              # true: only agents acting for a person are served
/// ```
/// A request naming a project its caller may not bill — or one the policy does not list — is
/// refused: a caller cannot charge another team's project or dodge its own budget.
///
/// Without `models`, every model is open to every caller. With it, a caller may name a model or
/// alias its rules allow and do not deny (when any rule names `users`, the person an agent acts
/// for must be allowed it too), `GET /v1/models` lists only those, and any other name gets the
/// answer of a model that does not exist. A model a rule denies is never routed to, even by an
/// alias.
public struct LLMPolicy: Codable, Sendable, Equatable {
    public struct Routing: Codable, Sendable, Equatable {
        public var aliases: [String: [String: [String]]]?
        public var examples: [Example]?
        public var classifierModel: String?
        /// A `/v1/embeddings` model for the cascade's second stage (the built-in embedder otherwise).
        public var embeddingModel: String?
        enum CodingKeys: String, CodingKey {
            case aliases, examples
            case classifierModel = "classifier_model"
            case embeddingModel = "embedding_model"
        }
        public init(aliases: [String: [String: [String]]]? = nil, examples: [Example]? = nil, classifierModel: String? = nil, embeddingModel: String? = nil) {
            self.aliases = aliases; self.examples = examples; self.classifierModel = classifierModel; self.embeddingModel = embeddingModel
        }
    }
    public struct Example: Codable, Sendable, Equatable {
        public var text: String
        public var `class`: String
        public init(text: String, class label: String) { self.text = text; self.class = label }
    }
    /// Which models and aliases a caller may use: an agent's (`identities`) or a person's (`users`).
    public struct ModelRule: Codable, Sendable, Equatable {
        public var identities: [String]?
        public var users: [String]?
        public var allow: [String]?
        public var deny: [String]?
        public init(identities: [String]? = nil, users: [String]? = nil, allow: [String]? = nil, deny: [String]? = nil) {
            self.identities = identities; self.users = users; self.allow = allow; self.deny = deny
        }
    }
    public struct Budget: Codable, Sendable, Equatable {
        public var identity: String?
        public var team: String?
        public var project: String?
        /// A person an agent acts for: `*` (each person) or a name.
        public var user: String?
        public var usdPerDay: Double?
        public var usdPerMonth: Double?
        public var requestsPerMinute: Int?
        public var tokensPerMinute: Int?
        enum CodingKeys: String, CodingKey {
            case identity, team, project, user
            case usdPerDay = "usd_per_day"
            case usdPerMonth = "usd_per_month"
            case requestsPerMinute = "requests_per_minute"
            case tokensPerMinute = "tokens_per_minute"
        }
        public init(identity: String? = nil, team: String? = nil, project: String? = nil, user: String? = nil, usdPerDay: Double? = nil,
                    usdPerMonth: Double? = nil, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil) {
            self.identity = identity; self.team = team; self.project = project; self.user = user; self.usdPerDay = usdPerDay
            self.usdPerMonth = usdPerMonth; self.requestsPerMinute = requestsPerMinute; self.tokensPerMinute = tokensPerMinute
        }
    }
    public struct Guardrails: Codable, Sendable, Equatable {
        public struct PII: Codable, Sendable, Equatable {
            public var action: String
            public var types: [String]?
            public init(action: String, types: [String]? = nil) { self.action = action; self.types = types }
        }
        public struct Injection: Codable, Sendable, Equatable {
            public var action: String
            public var threshold: Double?
            public init(action: String, threshold: Double? = nil) { self.action = action; self.threshold = threshold }
        }
        public struct Topics: Codable, Sendable, Equatable {
            public var deny: [String]
            public init(deny: [String]) { self.deny = deny }
        }
        public var pii: PII?
        public var injection: Injection?
        public var topics: Topics?
        public init(pii: PII? = nil, injection: Injection? = nil, topics: Topics? = nil) {
            self.pii = pii; self.injection = injection; self.topics = topics
        }
    }

    public var routing: Routing?
    public var budgets: [Budget]?
    public var guardrails: Guardrails?
    /// Project → the identities that may bill it (`#attribute`, `@name`, `#all`).
    public var projects: [String: [String]]?
    public var models: [ModelRule]?
    public var requirePerson: Bool?

    enum CodingKeys: String, CodingKey {
        case routing, budgets, guardrails, projects, models
        case requirePerson = "require_person"
    }

    public init(routing: Routing? = nil, budgets: [Budget]? = nil, guardrails: Guardrails? = nil, projects: [String: [String]]? = nil,
                models: [ModelRule]? = nil, requirePerson: Bool? = nil) {
        self.routing = routing; self.budgets = budgets; self.guardrails = guardrails; self.projects = projects
        self.models = models; self.requirePerson = requirePerson
    }

    /// What one caller (an agent, and the person it acts for) may use of the models.
    public func modelAccess(identity: String, attributes: [String], person: Person?) -> ModelAccess {
        guard let models else { return ModelAccess(open: true) }
        var access = ModelAccess(open: false)
        for rule in models {
            guard let identities = rule.identities, RoleExpression.matches(identities, name: identity, attributes: attributes) else { continue }
            access.allow += rule.allow ?? []
            access.deny += rule.deny ?? []
        }
        if let person, models.contains(where: { $0.users != nil }) {
            var personal = ModelAccess(open: false)
            for rule in models {
                guard let users = rule.users, RoleExpression.matches(users, name: person.name, attributes: person.attributes) else { continue }
                personal.allow += rule.allow ?? []
                personal.deny += rule.deny ?? []
            }
            access.also = [personal]
        }
        return access
    }

    /// A caller's model permissions: a name it may ask for, and names never routed to for it.
    public struct ModelAccess: Sendable, Equatable {
        var open: Bool
        var allow: [String] = []
        var deny: [String] = []
        var also: [ModelAccess] = []

        public func permits(_ name: String) -> Bool {
            guard also.allSatisfy({ $0.permits(name) }) else { return false }
            if open { return true }
            if deny.contains(where: { Glob.matches($0, name) }) { return false }
            return allow.contains { Glob.matches($0, name) }
        }

        public func denies(_ name: String) -> Bool {
            also.contains { $0.denies(name) } || deny.contains { Glob.matches($0, name) }
        }
    }

    /// Whether `identity` (with `attributes`) may bill `project`.
    public func permits(project: String, identity: String, attributes: [String]) -> Bool {
        guard let expressions = projects?[project] else { return false }
        return RoleExpression.matches(expressions, name: identity, attributes: attributes)
    }

    public static let configType = "llm-policy.v1"
    public static let classes = ["cost", "latency", "sensitive", "quality"]

    /// Why this policy cannot be used, or nil.
    public func problem() -> String? {
        for (alias, classes) in routing?.aliases ?? [:] {
            for name in classes.keys where !Self.classes.contains(name) {
                return "routing.aliases.\(alias): class '\(name)' is unknown; classes are \(Self.classes.joined(separator: ", "))"
            }
        }
        for example in routing?.examples ?? [] where !Self.classes.contains(example.class) {
            return "routing.examples: class '\(example.class)' is unknown; classes are \(Self.classes.joined(separator: ", "))"
        }
        for (index, rule) in (models ?? []).enumerated() {
            switch (rule.identities, rule.users) {
            case (let expressions?, nil), (nil, let expressions?):
                if expressions.isEmpty { return "models[\(index)] names nobody" }
                if let problem = RoleExpression.problem(in: expressions) { return "models[\(index)]: \(problem)" }
            default:
                return "models[\(index)] must name either identities (agents) or users (people), not both or neither"
            }
            if (rule.allow ?? []).isEmpty && (rule.deny ?? []).isEmpty { return "models[\(index)] allows and denies nothing" }
        }
        for (index, budget) in (budgets ?? []).enumerated() {
            let scopes = [budget.identity, budget.team, budget.project, budget.user].compactMap { $0 }
            if scopes.count != 1 { return "budgets[\(index)] needs exactly one of identity, team, project or user" }
            if budget.usdPerDay == nil && budget.usdPerMonth == nil && budget.requestsPerMinute == nil && budget.tokensPerMinute == nil {
                return "budgets[\(index)] sets no limit (usd_per_day, usd_per_month, requests_per_minute, tokens_per_minute)"
            }
        }
        if let action = guardrails?.pii?.action, !["block", "redact", "private"].contains(action) {
            return "guardrails.pii.action '\(action)' must be block, redact or private"
        }
        if let action = guardrails?.injection?.action, !["block", "flag"].contains(action) {
            return "guardrails.injection.action '\(action)' must be block or flag"
        }
        for (project, expressions) in projects ?? [:] {
            if project.isEmpty || project.count > 64 || !project.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) {
                return "projects: '\(project)' must be 1-64 letters, digits, '-', '_' or '.'"
            }
            if expressions.isEmpty { return "projects.\(project) names nobody: list '#attribute', '@name' or '#all'" }
            if let problem = RoleExpression.problem(in: expressions) { return "projects.\(project): \(problem)" }
        }
        return nil
    }
}
