import Foundation
import Shared

/// Spend and rate per budget key (`identity:NAME`, `team:ATTR`, `project:NAME`): the controller's
/// totals plus what this gateway used since it last reported. Checked before every call.
actor BudgetLedger {
    private var base = LLMSpend(day: "", month: "", daily: [:], monthly: [:])
    /// Whether the controller's totals arrived at least once (budgets are not checked blind).
    private(set) var loaded = false
    private var unreported: [LLMUsageRecord] = []
    private var pendingDaily: [String: Double] = [:]
    private var pendingMonthly: [String: Double] = [:]
    private var windows: [String: [(at: ContinuousClock.Instant, tokens: Int)]] = [:]

    struct Exceeded: Error, Sendable { let message: String }

    static func keys(identity: String, teams: [String], project: String?) -> [String] {
        ["identity:\(identity)"] + teams.map { "team:\($0)" } + (project.map { ["project:\($0)"] } ?? [])
    }

    func check(_ budgets: [LLMPolicy.Budget], identity: String, teams: [String], project: String?) -> Exceeded? {
        let now = ContinuousClock.now
        for budget in budgets {
            let key: String
            let label: String
            if let name = budget.identity {
                guard name == "*" || name == identity || name == "@" + identity else { continue }
                key = "identity:\(identity)"; label = "identity '\(identity)'"
            } else if let team = budget.team {
                let name = team.hasPrefix("#") ? String(team.dropFirst()) : team
                guard teams.contains(name) else { continue }
                key = "team:\(name)"; label = "team '\(name)'"
            } else if let name = budget.project {
                guard let project, name == "*" || name == project else { continue }
                key = "project:\(project)"; label = "project '\(project)'"
            } else { continue }
            let day = (base.daily[key] ?? 0) + (pendingDaily[key] ?? 0)
            let month = (base.monthly[key] ?? 0) + (pendingMonthly[key] ?? 0)
            if let limit = budget.usdPerDay, day >= limit {
                return Exceeded(message: String(format: "the daily budget of $%.2f for %@ is spent ($%.4f used today); it resets at 00:00 UTC", limit, label, day))
            }
            if let limit = budget.usdPerMonth, month >= limit {
                return Exceeded(message: String(format: "the monthly budget of $%.2f for %@ is spent ($%.4f used this month)", limit, label, month))
            }
            let recent = (windows[key] ?? []).filter { now - $0.at < .seconds(60) }
            windows[key] = recent
            if let limit = budget.requestsPerMinute, recent.count >= limit {
                return Exceeded(message: "the rate limit of \(limit) requests per minute for \(label) is reached; retry in a few seconds")
            }
            if let limit = budget.tokensPerMinute, recent.reduce(0, { $0 + $1.tokens }) >= limit {
                return Exceeded(message: "the limit of \(limit) tokens per minute for \(label) is reached; retry in a few seconds")
            }
        }
        return nil
    }

    /// A request was admitted (counts toward requests per minute at once).
    func admitted(keys: [String]) {
        let now = ContinuousClock.now
        for key in keys { windows[key, default: []].append((now, 0)) }
    }

    func record(_ usage: LLMUsageRecord, keys: [String]) {
        unreported.append(usage)
        let now = ContinuousClock.now
        for key in keys {
            pendingDaily[key, default: 0] += usage.costUSD
            pendingMonthly[key, default: 0] += usage.costUSD
            windows[key, default: []].append((now, usage.inputTokens + usage.outputTokens))
        }
    }

    /// What to send to the controller; `reported` (or `failed`) must follow.
    func takeUnreported() -> [LLMUsageRecord] {
        let batch = unreported
        unreported.removeAll()
        return batch
    }

    func failed(_ batch: [LLMUsageRecord]) { unreported = batch + unreported }

    /// The controller's totals now include everything reported so far.
    func refreshed(_ spend: LLMSpend, stillUnreported: Bool) {
        base = spend
        loaded = true
        if !stillUnreported && unreported.isEmpty {
            pendingDaily.removeAll()
            pendingMonthly.removeAll()
        }
    }

    var hasUnreported: Bool { !unreported.isEmpty }
}
