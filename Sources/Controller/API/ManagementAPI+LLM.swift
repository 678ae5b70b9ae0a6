import Foundation
import Hummingbird
import Shared

/// LLM usage and cost as the gateways reported it, over time, and how close each budget is.
extension ManagementAPI {
    static let usageKeys = ["identity", "team", "user", "project", "model", "provider"]

    func registerLLM(_ admin: RouterGroup<BasicRequestContext>) {
        admin.get("llm/usage") { request, _ in
            let query = request.uri.queryParameters
            return try usage.report(by: try Self.usageKey(query.get("by")), since: try Self.day(query.get("since")), roles: policies.snapshot.allIdentityRoles)
        }
        admin.get("llm/usage/daily") { request, _ in
            let query = request.uri.queryParameters
            return try dailyUsage(by: try Self.usageKey(query.get("by")), since: try Self.day(query.get("since")) ?? Self.daysAgo(30))
        }
        admin.get("llm/budgets") { _, _ in try budgetStatus() }
    }

    func dailyUsage(by key: String, since: String) throws -> [LLMDailyUsage] {
        try usage.daily(by: key, since: since, roles: policies.snapshot.allIdentityRoles)
            .map { LLMDailyUsage(day: $0.day, key: $0.key, requests: $0.requests, costUSD: $0.costUSD) }
    }

    /// Every budget of every `llm-policy.v1` config, per key it covers that has spent anything
    /// this month (or, for one naming `*` that nobody has spent against, the budget itself).
    func budgetStatus() throws -> [LLMBudgetStatus] {
        let snapshot = policies.snapshot
        let spend = try usage.spend(roles: snapshot.allIdentityRoles)
        var statuses: [LLMBudgetStatus] = []
        for config in snapshot.configs.values.sorted(by: { $0.name < $1.name }) where config.type == LLMPolicy.configType {
            guard let policy = try? config.data.decode(LLMPolicy.self) else { continue }
            for budget in policy.budgets ?? [] {
                let (kind, name): (String, String)
                if let identity = budget.identity { (kind, name) = ("identity", identity) }
                else if let team = budget.team { (kind, name) = ("team", team.hasPrefix("#") ? String(team.dropFirst()) : team) }
                else if let project = budget.project { (kind, name) = ("project", project) }
                else if let user = budget.user { (kind, name) = ("user", user) }
                else { continue }
                let label = "\(kind):\(name)"
                let keys: [String]
                if name == "*" {
                    let spent = spend.monthly.keys.filter { $0.hasPrefix(kind + ":") }.sorted()
                    keys = spent.isEmpty ? [label] : spent
                } else {
                    keys = ["\(kind):\(name.hasPrefix("@") ? String(name.dropFirst()) : name)"]
                }
                for key in keys {
                    statuses.append(LLMBudgetStatus(config: config.name, budget: label, key: key, usdPerDay: budget.usdPerDay, spentToday: spend.daily[key] ?? 0,
                                                    usdPerMonth: budget.usdPerMonth, spentThisMonth: spend.monthly[key] ?? 0,
                                                    requestsPerMinute: budget.requestsPerMinute, tokensPerMinute: budget.tokensPerMinute))
                }
            }
        }
        return statuses
    }

    static func usageKey(_ value: String?) throws -> String {
        let key = value ?? "identity"
        guard usageKeys.contains(key) else { throw HTTPError(.badRequest, message: "by must be identity, team, user, project, model or provider") }
        return key
    }

    /// A `YYYY-MM-DD` day, checked: it is compared as text with the stored days.
    static func day(_ value: String?) throws -> String? {
        guard let value else { return nil }
        guard value.utf8.count == 10, value.enumerated().allSatisfy({ index, character in index == 4 || index == 7 ? character == "-" : character.isASCII && character.isNumber }) else {
            throw HTTPError(.badRequest, message: "since must be a UTC day such as 2026-12-01")
        }
        return value
    }

    static func daysAgo(_ days: Int, from now: Date = Date()) -> String {
        UsageLedger.day(now.addingTimeInterval(-Double(days) * 86_400))
    }
}

extension LLMUsageRow: ResponseEncodable {}
extension LLMDailyUsage: ResponseEncodable {}
extension LLMBudgetStatus: ResponseEncodable {}
