import Foundation
import Shared

/// LLM usage, summed per UTC day, identity, person, project, model and provider. Budgets read today's
/// and this month's spend from it; `portless usage` reports it.
struct UsageLedger: Sendable {
    let store: Store

    static func day(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }

    /// Bounds a reported record must keep: a call of a billion tokens or a million dollars is
    /// not a call, it is a forged or broken report.
    static let maxTokens = 1_000_000_000
    static let maxCostUSD = 1_000_000.0
    static let maxClockSkew: TimeInterval = 2 * 86_400

    /// Why `record` cannot be stored, or nil.
    static func problem(_ record: LLMUsageRecord, now: Date = Date()) -> String? {
        for count in [record.inputTokens, record.outputTokens, record.cachedInputTokens ?? 0, record.cacheWriteTokens ?? 0, record.reasoningTokens ?? 0]
            where !(0...maxTokens).contains(count) {
            return "token counts must be within 0...\(maxTokens)"
        }
        if !record.costUSD.isFinite || record.costUSD < 0 || record.costUSD > maxCostUSD { return "cost must be within 0...\(Int(maxCostUSD)) USD" }
        if abs(record.at.timeIntervalSince(now)) > maxClockSkew { return "its time is more than two days from now" }
        for (field, value) in [("identity", record.identity), ("model", record.model), ("provider", record.provider)]
            where value.isEmpty || value.utf8.count > 128 { return "\(field) must be 1-128 bytes" }
        if let project = record.project, project.utf8.count > 64 { return "project must be at most 64 bytes" }
        if let user = record.user, user.isEmpty || user.utf8.count > 256 { return "user must be 1-256 bytes" }
        return nil
    }

    func add(_ records: [LLMUsageRecord]) throws {
        try store.write { db in
            for record in records {
                try db.execute("""
                    INSERT INTO llmUsage (day, identity, "user", project, model, provider, requests, inputTokens, outputTokens, costUSD,
                                          cachedInputTokens, cacheWriteTokens, reasoningTokens, estimatedRequests, unpricedRequests)
                    VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(day, identity, "user", project, model, provider) DO UPDATE SET
                      requests = llmUsage.requests + 1, inputTokens = llmUsage.inputTokens + excluded.inputTokens,
                      outputTokens = llmUsage.outputTokens + excluded.outputTokens, costUSD = llmUsage.costUSD + excluded.costUSD,
                      cachedInputTokens = llmUsage.cachedInputTokens + excluded.cachedInputTokens,
                      cacheWriteTokens = llmUsage.cacheWriteTokens + excluded.cacheWriteTokens,
                      reasoningTokens = llmUsage.reasoningTokens + excluded.reasoningTokens,
                      estimatedRequests = llmUsage.estimatedRequests + excluded.estimatedRequests,
                      unpricedRequests = llmUsage.unpricedRequests + excluded.unpricedRequests
                    """, [Self.day(record.at), record.identity, record.user ?? "", record.project ?? "", record.model, record.provider,
                                     record.inputTokens, record.outputTokens, record.costUSD, record.cachedInputTokens ?? 0, record.cacheWriteTokens ?? 0,
                                     record.reasoningTokens ?? 0, record.estimated == true ? 1 : 0, record.unpriced == true ? 1 : 0])
            }
        }
    }

    /// Spend per budget key today and this month; teams are the identities' role attributes.
    func spend(now: Date = Date(), roles: [String: [String]]) throws -> LLMSpend {
        let today = Self.day(now)
        let month = String(today.prefix(7))
        let rows = try store.read { db in
            try db.rows("""
                SELECT day, identity, "user", project, SUM(costUSD) AS cost FROM llmUsage WHERE day LIKE ? GROUP BY day, identity, "user", project
                """, [month + "-%"])
        }
        var daily: [String: Double] = [:], monthly: [String: Double] = [:]
        for row in rows {
            let day = try row.string("day"), identity = try row.string("identity"), user = try row.string("user")
            let project = try row.string("project"), cost = try row.double("cost")
            var keys = ["identity:\(identity)"] + (roles[identity] ?? []).map { "team:\($0)" }
            if !project.isEmpty { keys.append("project:\(project)") }
            if !user.isEmpty { keys.append("user:\(user)") }
            for key in keys {
                monthly[key, default: 0] += cost
                if day == today { daily[key, default: 0] += cost }
            }
        }
        return LLMSpend(day: today, month: month, daily: daily, monthly: monthly)
    }

    /// Totals grouped by identity, team (role attribute), person (`user`), project, model or provider,
    /// from `since` (a day).
    func report(by key: String, since: String?, roles: [String: [String]]) throws -> [LLMUsageRow] {
        // Sums over doubles: they never overflow (SQLite's integer SUM would throw), on either backend.
        func total(_ column: String) -> String { "SUM(CAST(\(column) AS DOUBLE PRECISION))" }
        let rows = try store.read { db in
            try db.rows("""
                SELECT identity, "user", project, model, provider, \(total("requests")) AS requests, \(total("inputTokens")) AS input,
                       \(total("outputTokens")) AS output, \(total("costUSD")) AS cost, \(total("cachedInputTokens")) AS cached,
                       \(total("reasoningTokens")) AS reasoning, \(total("estimatedRequests")) AS estimated, \(total("unpricedRequests")) AS unpriced
                FROM llmUsage WHERE day >= ?
                GROUP BY identity, "user", project, model, provider
                """, [since ?? "0000-00-00"])
        }
        var totals: [String: LLMUsageRow] = [:]
        for row in rows {
            for name in try Self.keys(of: row, by: key, roles: roles) {
                var total = totals[name] ?? LLMUsageRow(key: name, requests: 0, inputTokens: 0, outputTokens: 0, costUSD: 0)
                // Sums are read as doubles (TOTAL never overflows) and added saturating: a report never traps.
                total.requests = Self.saturatingSum(total.requests, try row.double("requests"))
                total.inputTokens = Self.saturatingSum(total.inputTokens, try row.double("input"))
                total.outputTokens = Self.saturatingSum(total.outputTokens, try row.double("output"))
                total.costUSD += try row.double("cost")
                total.cachedInputTokens = Self.saturatingSum(total.cachedInputTokens ?? 0, try row.double("cached"))
                total.reasoningTokens = Self.saturatingSum(total.reasoningTokens ?? 0, try row.double("reasoning"))
                total.estimatedRequests = Self.saturatingSum(total.estimatedRequests ?? 0, try row.double("estimated"))
                total.unpricedRequests = Self.saturatingSum(total.unpricedRequests ?? 0, try row.double("unpriced"))
                totals[name] = total
            }
        }
        return totals.values.sorted { $0.costUSD == $1.costUSD ? $0.key < $1.key : $0.costUSD > $1.costUSD }
    }

    /// The report keys one usage row counts under.
    private static func keys(of row: SQLRow, by key: String, roles: [String: [String]]) throws -> [String] {
        let identity = try row.string("identity"), project = try row.string("project"), user = try row.string("user")
        switch key {
        case "team": return roles[identity] ?? ["(none)"]
        case "project": return [project.isEmpty ? "(none)" : project]
        case "model": return [try row.string("model")]
        case "provider": return [try row.string("provider")]
        case "user": return [user.isEmpty ? "(no person)" : user]
        default: return [identity]
        }
    }

    /// Cost per UTC day and key (as `report` groups them), from `since` (a day).
    func daily(by key: String, since: String, roles: [String: [String]]) throws -> [(day: String, key: String, costUSD: Double, requests: Int)] {
        let rows = try store.read { db in
            try db.rows("""
                SELECT day, identity, "user", project, model, provider, SUM(CAST(costUSD AS DOUBLE PRECISION)) AS cost,
                       SUM(CAST(requests AS DOUBLE PRECISION)) AS requests
                FROM llmUsage WHERE day >= ? GROUP BY day, identity, "user", project, model, provider
                """, [since])
        }
        var totals: [String: [String: (Double, Int)]] = [:]
        for row in rows {
            let day = try row.string("day"), cost = try row.double("cost"), requests = try row.double("requests")
            for name in try Self.keys(of: row, by: key, roles: roles) {
                let (sum, count) = totals[day, default: [:]][name] ?? (0, 0)
                totals[day, default: [:]][name] = (sum + cost, Self.saturatingSum(count, requests))
            }
        }
        return totals.flatMap { day, keys in keys.map { (day: day, key: $0.key, costUSD: $0.value.0, requests: $0.value.1) } }
            .sorted { ($0.day, $0.key) < ($1.day, $1.key) }
    }

    static func saturatingSum(_ a: Int, _ b: Double) -> Int {
        let sum = Double(a) + b
        guard sum.isFinite else { return Int.max }
        return sum >= Double(Int.max) ? Int.max : sum <= 0 ? 0 : Int(sum)
    }
}
