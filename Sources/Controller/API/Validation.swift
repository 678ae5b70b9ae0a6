import Hummingbird
import Shared

/// Input checks for the management API; each failure is a 400 that says what to fix.
enum Validation {
    static func name(_ name: String, kind: String) throws {
        let allowed = name.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
        guard !name.isEmpty, name.utf8.count <= 64, allowed, name.first?.isLetter == true || name.first?.isNumber == true else {
            throw HTTPError(.badRequest, message: "\(kind) name '\(name)' is invalid: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
        }
    }

    static func attributes(_ roles: [String]) throws {
        for role in roles where role.isEmpty || role.hasPrefix("#") || role.hasPrefix("@") {
            throw HTTPError(.badRequest, message: "role attribute '\(role)' is invalid: write attributes without '#' or '@'")
        }
    }

    static func roles(_ expressions: [String], field: String) throws {
        guard !expressions.isEmpty else { throw HTTPError(.badRequest, message: "\(field) is empty: name at least one '#attribute', '@name' or '#all'") }
        if let problem = RoleExpression.problem(in: expressions) { throw HTTPError(.badRequest, message: "\(field): \(problem)") }
    }

    static func config(_ spec: ConfigSpec) throws {
        guard ConfigSpec.knownTypes.contains(spec.type) else {
            throw HTTPError(.badRequest, message: "config type '\(spec.type)' is unknown; known types: \(ConfigSpec.knownTypes.joined(separator: ", "))")
        }
        if spec.type == MCPToolPolicy.configType {
            let policy: MCPToolPolicy
            do { policy = try spec.data.decode(MCPToolPolicy.self) } catch {
                throw HTTPError(.badRequest, message: "config '\(spec.name)' (\(spec.type)) needs data.rules: [{identities, allow, deny}]: \(error)")
            }
            if let problem = policy.problem() { throw HTTPError(.badRequest, message: "config '\(spec.name)': \(problem)") }
            return
        }
        if spec.type == LLMPolicy.configType {
            let policy: LLMPolicy
            do { policy = try spec.data.decode(LLMPolicy.self) } catch {
                throw HTTPError(.badRequest, message: "config '\(spec.name)' (\(spec.type)) is not an LLM policy (routing, budgets, guardrails): \(error)")
            }
            if let problem = policy.problem() { throw HTTPError(.badRequest, message: "config '\(spec.name)': \(problem)") }
            return
        }
        guard let address = spec.data["address"]?.stringValue else {
            throw HTTPError(.badRequest, message: "config '\(spec.name)' (\(spec.type)) needs data.address (host:port)")
        }
        do {
            if spec.type == "host.v1" { _ = try LocalAddress(parsing: address) } else { _ = try SocketAddress(parsing: address) }
        } catch {
            throw HTTPError(.badRequest, message: "config '\(spec.name)': \(error)")
        }
    }
}
