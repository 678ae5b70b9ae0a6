/// The data of an `mcp-tools.v1` config attached to an MCP gateway's service: which tools,
/// resources and prompts each caller may see and use.
///
/// ```yaml
/// rules:
///   - identities: ["#support"]            # agents: #attribute, @name or #all
///     allow: ["tickets/*", "files/read_file", "prompt:tickets/*"]
///     deny:  ["tickets/delete_*"]
///   - users: ["#finance"]                 # people an agent acts for (see external JWT signers)
///     allow: ["sql/*"]
/// require_person: false                   # true: only agents acting for a person are served
/// ```
/// A pattern is `server/item` with `*` and `?` wildcards; the item is a tool's or prompt's name,
/// or a resource's URI (a template's URI template). A `tool:`, `resource:` or `prompt:` prefix
/// limits it to that kind. Deny wins over allow, and anything no rule allows is denied. A
/// gateway whose service has no such config shows nothing at all.
///
/// An agent acting for a person sees what both may use: the `identities` rules matching the agent
/// and, when any rule names `users`, the `users` rules matching the person. Without `users`
/// rules, people are not restricted beyond their agent.
public struct MCPToolPolicy: Codable, Sendable, Equatable {
    public struct Rule: Codable, Sendable, Equatable {
        public var identities: [String]?
        public var users: [String]?
        public var allow: [String]?
        public var deny: [String]?
        public init(identities: [String]? = nil, users: [String]? = nil, allow: [String]? = nil, deny: [String]? = nil) {
            self.identities = identities; self.users = users; self.allow = allow; self.deny = deny
        }
    }

    public enum Kind: String, Sendable, CaseIterable { case tool, resource, prompt }

    public var rules: [Rule]
    /// Only agents acting for a person (with their token) are served.
    public var requirePerson: Bool?

    enum CodingKeys: String, CodingKey {
        case rules
        case requirePerson = "require_person"
    }

    public init(rules: [Rule], requirePerson: Bool? = nil) { self.rules = rules; self.requirePerson = requirePerson }

    public static let configType = "mcp-tools.v1"

    /// The policy a gateway follows for a service: every `mcp-tools.v1` config of it counts, their
    /// rules merged (a deny in any of them wins), a person required if any requires one. Nil when
    /// there is none; when one cannot be read the policy shows nothing (it must not widen access),
    /// and `unreadable` names it and why.
    public static func merged(_ configs: [ConfigSpec]) -> (policy: MCPToolPolicy?, unreadable: [(config: String, error: Error)]) {
        var rules: [Rule] = [], requirePerson = false, found = false
        var unreadable: [(config: String, error: Error)] = []
        for config in configs where config.type == configType {
            found = true
            do {
                let decoded = try config.data.decode(MCPToolPolicy.self)
                rules += decoded.rules
                requirePerson = requirePerson || decoded.requirePerson == true
            } catch {
                unreadable.append((config.name, error))
            }
        }
        guard found else { return (nil, []) }
        return (unreadable.isEmpty ? MCPToolPolicy(rules: rules, requirePerson: requirePerson) : MCPToolPolicy(rules: []), unreadable)
    }

    /// Why this policy cannot be used, or nil.
    public func problem() -> String? {
        for (index, rule) in rules.enumerated() {
            switch (rule.identities, rule.users) {
            case (let identities?, nil):
                if identities.isEmpty { return "rule \(index + 1) names no identities" }
                if let problem = RoleExpression.problem(in: identities) { return "rule \(index + 1): \(problem)" }
            case (nil, let users?):
                if users.isEmpty { return "rule \(index + 1) names no users" }
                if let problem = RoleExpression.problem(in: users) { return "rule \(index + 1): \(problem)" }
            default:
                return "rule \(index + 1) must name either identities (agents) or users (people), not both or neither"
            }
            for pattern in (rule.allow ?? []) + (rule.deny ?? []) where Pattern(pattern) == nil {
                return "rule \(index + 1): pattern '\(pattern)' must be [tool:|resource:|prompt:]server/item"
            }
        }
        return nil
    }

    /// The rules that apply to one agent — and to the person it acts for, if any — compiled for matching.
    public func grant(for identity: String, attributes: [String], person: Person? = nil) -> Grant {
        var grant = Grant()
        for rule in rules {
            guard let identities = rule.identities, RoleExpression.matches(identities, name: identity, attributes: attributes) else { continue }
            grant.add(rule)
        }
        guard let person, rules.contains(where: { $0.users != nil }) else { return grant }
        var personal = Grant()
        for rule in rules {
            guard let users = rule.users, RoleExpression.matches(users, name: person.name, attributes: person.attributes) else { continue }
            personal.add(rule)
        }
        grant.also = [personal]
        return grant
    }

    /// What one caller may use: what its own rules allow and do not deny, and what every grant
    /// in `also` (the person's) permits as well.
    public struct Grant: Sendable, Equatable {
        var allow: [Pattern] = []
        var deny: [Pattern] = []
        var all = false
        var also: [Grant] = []

        public static let everything = Grant(all: true)
        public static let nothing = Grant()

        mutating func add(_ rule: Rule) {
            allow += (rule.allow ?? []).compactMap(Pattern.init)
            deny += (rule.deny ?? []).compactMap(Pattern.init)
        }

        public func permits(_ kind: Kind, server: String, item: String) -> Bool {
            guard also.allSatisfy({ $0.permits(kind, server: server, item: item) }) else { return false }
            if all { return true }
            if deny.contains(where: { $0.matches(kind, server: server, item: item) }) { return false }
            return allow.contains(where: { $0.matches(kind, server: server, item: item) })
        }
    }

    struct Pattern: Sendable, Equatable {
        let kind: Kind?
        let server: String
        let item: String

        init?(_ text: String) {
            var rest = Substring(text)
            var kind: Kind?
            for candidate in Kind.allCases where rest.hasPrefix(candidate.rawValue + ":") {
                kind = candidate
                rest = rest.dropFirst(candidate.rawValue.count + 1)
            }
            guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex else { return nil }
            self.kind = kind
            self.server = String(rest[..<slash])
            self.item = String(rest[rest.index(after: slash)...])
        }

        func matches(_ kind: Kind, server: String, item: String) -> Bool {
            if let own = self.kind, own != kind { return false }
            return Glob.matches(self.server, server) && Glob.matches(self.item, item)
        }
    }
}

/// `*` (any run, including none) and `?` (one character) wildcards.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        if pattern == "*" { return true }
        if !pattern.contains("*") && !pattern.contains("?") { return pattern == text }
        let p = Array(pattern.unicodeScalars), t = Array(text.unicodeScalars)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] { pi += 1; ti += 1 }
            else if pi < p.count, p[pi] == "*" { star = pi; mark = ti; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
