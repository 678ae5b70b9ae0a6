import Foundation
import Shared

/// Spend and rate per budget key (`identity:NAME`, `team:ATTR`, `project:NAME`, `user:NAME`): the controller's
/// totals plus what this gateway used since it last reported. Checked before every call; a lock,
/// not an actor, because it sits on every request's path.
final class BudgetLedger: Sendable {
    private struct State {
        var base = LLMSpend(day: "", month: "", daily: [:], monthly: [:])
        /// Whether the controller's totals arrived at least once (budgets are not checked blind).
        var loaded = false
        var unreported: [LLMUsageRecord] = []
        var pendingDaily: [String: Double] = [:]
        var pendingMonthly: [String: Double] = [:]
        var windows: [String: RateWindow] = [:]
    }
    private let state = Locked(State())

    var loaded: Bool { state.withLock { $0.loaded } }
    var hasUnreported: Bool { state.withLock { !$0.unreported.isEmpty } }

    struct Exceeded: Error, Sendable { let message: String }

    static func keys(identity: String, teams: [String], project: String?, user: String? = nil) -> [String] {
        ["identity:\(identity)"] + teams.map { "team:\($0)" } + (project.map { ["project:\($0)"] } ?? []) + (user.map { ["user:\($0)"] } ?? [])
    }

    func check(_ budgets: [LLMPolicy.Budget], identity: String, teams: [String], project: String?, user: String? = nil) -> Exceeded? {
        guard !budgets.isEmpty else { return nil }
        return state.withLock { state in check(budgets, identity: identity, teams: teams, project: project, user: user, state: &state) }
    }

    private func check(_ budgets: [LLMPolicy.Budget], identity: String, teams: [String], project: String?, user: String?, state: inout State) -> Exceeded? {
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
            } else if let name = budget.user {
                guard let user, name == "*" || name == user || name == "@" + user else { continue }
                key = "user:\(user)"; label = "person '\(user)'"
            } else { continue }
            let day = (state.base.daily[key] ?? 0) + (state.pendingDaily[key] ?? 0)
            let month = (state.base.monthly[key] ?? 0) + (state.pendingMonthly[key] ?? 0)
            if let limit = budget.usdPerDay, day >= limit {
                return Exceeded(message: String(format: "the daily budget of $%.2f for %@ is spent ($%.4f used today); it resets at 00:00 UTC", limit, label, day))
            }
            if let limit = budget.usdPerMonth, month >= limit {
                return Exceeded(message: String(format: "the monthly budget of $%.2f for %@ is spent ($%.4f used this month)", limit, label, month))
            }
            guard budget.requestsPerMinute != nil || budget.tokensPerMinute != nil else { continue }
            state.windows[key, default: RateWindow()].prune(now: now)
            let recent = state.windows[key] ?? RateWindow()
            if let limit = budget.requestsPerMinute, recent.requests >= limit {
                return Exceeded(message: "the rate limit of \(limit) requests per minute for \(label) is reached; retry in a few seconds")
            }
            if let limit = budget.tokensPerMinute, recent.tokenSum >= limit {
                return Exceeded(message: "the limit of \(limit) tokens per minute for \(label) is reached; retry in a few seconds")
            }
        }
        return nil
    }

    /// A request was admitted (counts toward requests per minute at once).
    func admitted(keys: [String]) {
        let now = ContinuousClock.now
        state.withLock { state in for key in keys { state.windows[key, default: RateWindow()].add(at: now, tokens: 0) } }
    }

    func record(_ usage: LLMUsageRecord, keys: [String]) {
        let now = ContinuousClock.now
        state.withLock { state in
            state.unreported.append(usage)
            for key in keys {
                state.pendingDaily[key, default: 0] += usage.costUSD
                state.pendingMonthly[key, default: 0] += usage.costUSD
                state.windows[key, default: RateWindow()].add(at: now, tokens: usage.inputTokens + usage.outputTokens)
            }
        }
    }

    /// What to send to the controller; `reported` (or `failed`) must follow.
    func takeUnreported() -> [LLMUsageRecord] {
        state.withLock { state in
            let batch = state.unreported
            state.unreported.removeAll()
            return batch
        }
    }

    func failed(_ batch: [LLMUsageRecord]) { state.withLock { $0.unreported = batch + $0.unreported } }

    /// The controller's totals now include everything reported so far.
    func refreshed(_ spend: LLMSpend, stillUnreported: Bool) {
        state.withLock { state in
            state.base = spend
            state.loaded = true
            if !stillUnreported && state.unreported.isEmpty {
                state.pendingDaily.removeAll()
                state.pendingMonthly.removeAll()
            }
        }
    }
}
