import Foundation
import Shared

/// Spend and rate per budget key (`identity:NAME`, `team:ATTR`, `project:NAME`, `user:NAME`): the controller's
/// totals plus what this gateway used that those totals do not hold yet. Checked before every
/// call; a lock, not an actor, because it sits on every request's path.
///
/// This gateway's own spend moves through three stages — recorded, being reported, reported —
/// and leaves the ledger only when totals fetched after its report arrive, so under any load it
/// is counted exactly once: never twice (once in the totals and again as this gateway's), never
/// not at all.
final class BudgetLedger: Sendable {
    /// Spend per key, today and this month.
    struct Amounts {
        var daily: [String: Double] = [:]
        var monthly: [String: Double] = [:]

        mutating func add(_ other: Amounts) {
            for (key, cost) in other.daily { daily[key, default: 0] += cost }
            for (key, cost) in other.monthly { monthly[key, default: 0] += cost }
        }
    }

    private struct State {
        var base = LLMSpend(day: "", month: "", daily: [:], monthly: [:])
        /// Whether the controller's totals arrived at least once (budgets are not checked blind).
        var loaded = false
        var unreported: [LLMUsageRecord] = []
        /// The spend of `unreported`.
        var recorded = Amounts()
        /// Taken for a report that has not been answered yet.
        var reporting = Amounts()
        /// Reported, numbered in order, and not yet in `base`.
        var reported: [(number: Int, amounts: Amounts)] = []
        var reports = 0
        var windows: [String: RateWindow] = [:]

        /// This gateway's spend on `key` that the controller's totals do not hold yet.
        func own(_ period: KeyPath<Amounts, [String: Double]>, _ key: String) -> Double {
            reported.reduce((recorded[keyPath: period][key] ?? 0) + (reporting[keyPath: period][key] ?? 0)) { $0 + ($1.amounts[keyPath: period][key] ?? 0) }
        }
    }
    private let state = Locked(State())

    var loaded: Bool { state.withLock { $0.loaded } }

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
            // What the refusal calls the budget's holder (only a refusal needs it).
            let holder: (kind: String, name: String)
            if let name = budget.identity {
                guard name == "*" || name == identity || name == "@" + identity else { continue }
                key = "identity:\(identity)"; holder = ("identity", identity)
            } else if let team = budget.team {
                let name = team.hasPrefix("#") ? String(team.dropFirst()) : team
                guard teams.contains(name) else { continue }
                key = "team:\(name)"; holder = ("team", name)
            } else if let name = budget.project {
                guard let project, name == "*" || name == project else { continue }
                key = "project:\(project)"; holder = ("project", project)
            } else if let name = budget.user {
                guard let user, name == "*" || name == user || name == "@" + user else { continue }
                key = "user:\(user)"; holder = ("person", user)
            } else { continue }
            var label: String { "\(holder.kind) '\(holder.name)'" }
            let day = (state.base.daily[key] ?? 0) + state.own(\.daily, key)
            let month = (state.base.monthly[key] ?? 0) + state.own(\.monthly, key)
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
                state.recorded.daily[key, default: 0] += usage.costUSD
                state.recorded.monthly[key, default: 0] += usage.costUSD
                state.windows[key, default: RateWindow()].add(at: now, tokens: usage.inputTokens + usage.outputTokens)
            }
        }
    }

    /// What to send to the controller; `reported` or `failed` must follow before the next take.
    func takeUnreported() -> [LLMUsageRecord] {
        state.withLock { state in
            let batch = state.unreported
            state.unreported.removeAll()
            state.reporting.add(state.recorded)
            state.recorded = Amounts()
            return batch
        }
    }

    /// The controller stored the batch taken last; totals fetched from now on hold it.
    func reported() {
        state.withLock { state in
            state.reports += 1
            state.reported.append((state.reports, state.reporting))
            state.reporting = Amounts()
        }
    }

    /// Which reports totals fetched from now on hold (pass it to `refreshed`).
    var reportsStored: Int { state.withLock { $0.reports } }

    /// The batch taken last was not stored: it is reported again with the next one.
    func failed(_ batch: [LLMUsageRecord]) {
        state.withLock { state in
            state.unreported = batch + state.unreported
            state.recorded.add(state.reporting)
            state.reporting = Amounts()
        }
    }

    /// The controller's totals, fetched once the first `holding` reports were stored.
    func refreshed(_ spend: LLMSpend, holding: Int) {
        state.withLock { state in
            state.base = spend
            state.loaded = true
            state.reported.removeAll { $0.number <= holding }
        }
    }
}

