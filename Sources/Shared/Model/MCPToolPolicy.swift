/// The data of an `mcp-tools.v1` config attached to an MCP gateway's service: which tools,
/// resources and prompts each caller may see and use.
///
/// ```yaml
/// rules:
///   - identities: ["#support"]            # #attribute, @name or #all
///     allow: ["tickets/*", "files/read_file", "prompt:tickets/*"]
///     deny:  ["tickets/delete_*"]
/// ```
/// A pattern is `server/item` with `*` and `?` wildcards; the item is a tool's or prompt's name,
/// or a resource's URI (a template's URI template). A `tool:`, `resource:` or `prompt:` prefix
/// limits it to that kind. Deny wins over allow, and anything no rule allows is denied. A
/// gateway whose service has no such config shows nothing at all.
public struct MCPToolPolicy: Codable, Sendable, Equatable {
    public struct Rule: Codable, Sendable, Equatable {
        public var identities: [String]
        public var allow: [String]?
        public var deny: [String]?
        public init(identities: [String], allow: [String]? = nil, deny: [String]? = nil) {
            self.identities = identities; self.allow = allow; self.deny = deny
        }
    }

    public enum Kind: String, Sendable, CaseIterable { case tool, resource, prompt }

    public var rules: [Rule]
    public init(rules: [Rule]) { self.rules = rules }

    public static let configType = "mcp-tools.v1"

    /// Why this policy cannot be used, or nil.
    public func problem() -> String? {
        for (index, rule) in rules.enumerated() {
            if rule.identities.isEmpty { return "rule \(index + 1) names no identities" }
            if let problem = RoleExpression.problem(in: rule.identities) { return "rule \(index + 1): \(problem)" }
            for pattern in (rule.allow ?? []) + (rule.deny ?? []) where Pattern(pattern) == nil {
                return "rule \(index + 1): pattern '\(pattern)' must be [tool:|resource:|prompt:]server/item"
            }
        }
        return nil
    }

    /// The rules that apply to one caller, compiled for matching.
    public func grant(for identity: String, attributes: [String]) -> Grant {
        var grant = Grant()
        for rule in rules where RoleExpression.matches(rule.identities, name: identity, attributes: attributes) {
            grant.allow += (rule.allow ?? []).compactMap(Pattern.init)
            grant.deny += (rule.deny ?? []).compactMap(Pattern.init)
        }
        return grant
    }

    /// What one caller may use.
    public struct Grant: Sendable, Equatable {
        var allow: [Pattern] = []
        var deny: [Pattern] = []
        var all = false

        public static let everything = Grant(all: true)
        public static let nothing = Grant()

        public func permits(_ kind: Kind, server: String, item: String) -> Bool {
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
