import Foundation
import Hummingbird
import Shared

/// The console's spend page: LLM cost by identity, team, person, project, model or provider —
/// in total and per day — budgets and how close each is, and the guardrails' verdicts.
extension ManagementAPI {
    static let spendSeries = 6

    func spendPage(_ request: Request) throws -> String {
        let query = request.uri.queryParameters
        let by = try Self.usageKey(query.get("by"))
        let days = min(max(query.get("days").flatMap { Int($0) } ?? 30, 1), 366)
        let since = Self.daysAgo(days - 1)
        let rows = try usage.report(by: by, since: since, roles: policies.snapshot.allIdentityRoles)

        let choices = Self.usageKeys.map {
            $0 == by ? "<strong>\($0)</strong>" : ConsoleHTML.link("/console/spend", ["by": $0, "days": "\(days)"], $0)
        }.joined(separator: " · ")
        let periods = [7, 30, 90].map {
            $0 == days ? "<strong>\($0) days</strong>" : ConsoleHTML.link("/console/spend", ["by": by, "days": "\($0)"], "\($0) days")
        }.joined(separator: " · ")
        var body = "<p>By: \(choices)</p><p>Period: \(periods) (from \(since), UTC days)</p>"
        body += try overTime(by: by, since: since, days: days)

        let top = rows.map(\.costUSD).max() ?? 0
        var totals = "<svg role=\"img\" aria-label=\"cost by \(by)\" width=\"640\" height=\"\(max(1, rows.count) * 26 + 10)\">"
        for (index, row) in rows.enumerated() {
            let width = top > 0 ? 340 * row.costUSD / top : 0
            totals += "<text x=\"0\" y=\"\(index * 26 + 20)\">\(ConsoleHTML.escape(String(row.key.prefix(24))))</text>"
            totals += "<rect class=\"bar\" x=\"180\" y=\"\(index * 26 + 6)\" width=\"\(width)\" height=\"18\"/>"
            totals += "<text x=\"\(186 + width)\" y=\"\(index * 26 + 20)\">\(Self.dollars(row.costUSD))</text>"
        }
        totals += "</svg>"
        body += "<section id=\"totals\"><h2>Totals</h2>" + totals
        body += ConsoleHTML.table([by, "requests", "input tokens", "output tokens", "cost (USD)"], rows.map {
            [ConsoleHTML.escape($0.key), "\($0.requests)", "\($0.inputTokens)", "\($0.outputTokens)", String(format: "%.6f", $0.costUSD)]
        }, caption: "LLM usage by \(by)") + "</section>"
        body += try budgets()
        body += try verdicts()
        return ConsoleHTML.page("Spend", section: "spend", csrf: csrf(request), body: body)
    }

    /// Cost per day, stacked per key: the keys that cost most get a colour each, the rest one together.
    private func overTime(by: String, since: String, days: Int) throws -> String {
        let daily = try dailyUsage(by: by, since: since)
        var costs: [String: Double] = [:]
        for row in daily { costs[row.key, default: 0] += row.costUSD }
        let ranking: [String] = costs.sorted { (a: (key: String, value: Double), b: (key: String, value: Double)) -> Bool in
            a.value == b.value ? a.key < b.key : a.value > b.value
        }.map(\.key)
        let named = Array(ranking.prefix(Self.spendSeries))
        let series = named + (ranking.count > named.count ? ["(others)"] : [])
        func seriesIndex(_ key: String) -> Int { named.firstIndex(of: key) ?? named.count }
        let dayList = (0..<days).reversed().map { Self.daysAgo($0) }
        var perDay: [String: [Double]] = [:]
        for row in daily { perDay[row.day, default: Array(repeating: 0, count: series.count)][seriesIndex(row.key)] += row.costUSD }
        let highest = perDay.values.map { $0.reduce(0, +) }.max() ?? 0
        let width = 640.0, height = 180.0, left = 70.0
        let step = (width - left) / Double(max(dayList.count, 1))
        var svg = "<svg role=\"img\" aria-label=\"cost per day by \(by)\" width=\"\(Int(width))\" height=\"\(Int(height + 30))\">"
        svg += "<text x=\"0\" y=\"12\">\(Self.dollars(highest))</text><text x=\"0\" y=\"\(height)\">$0</text>"
        svg += "<line class=\"axis\" x1=\"\(left)\" y1=\"\(height)\" x2=\"\(width)\" y2=\"\(height)\"/>"
        for (index, day) in dayList.enumerated() {
            let x = left + Double(index) * step
            var y = height
            for (part, cost) in (perDay[day] ?? []).enumerated() where cost > 0 && highest > 0 {
                let h = max(1, (height - 10) * cost / highest)
                y -= h
                svg += "<rect class=\"series-\(part)\" x=\"\(x + 1)\" y=\"\(y)\" width=\"\(max(1, step - 2))\" height=\"\(h)\"><title>\(ConsoleHTML.escape(day)) \(ConsoleHTML.escape(series[part])): \(String(format: "$%.6f", cost))</title></rect>"
            }
            if index == 0 || index == dayList.count - 1 || (dayList.count > 10 && index % (dayList.count / 5) == 0) {
                let anchor = index == dayList.count - 1 ? " text-anchor=\"end\"" : ""
                svg += "<text x=\"\(index == dayList.count - 1 ? x + step : x)\" y=\"\(height + 16)\"\(anchor)>\(ConsoleHTML.escape(String(day.suffix(5))))</text>"
            }
        }
        svg += "</svg>"
        let legend = "<ul class=\"legend\">" + series.enumerated().map { "<li><span class=\"swatch series-\($0.offset)\"></span>\(ConsoleHTML.escape($0.element))</li>" }.joined() + "</ul>"
        let table = ConsoleHTML.table(["day", by, "requests", "cost (USD)"], daily.reversed().map {
            [ConsoleHTML.escape($0.day), ConsoleHTML.escape($0.key), "\($0.requests)", String(format: "%.6f", $0.costUSD)]
        }, caption: "Per day (\(daily.count) rows)")
        return "<section id=\"over-time\"><h2>Over time</h2>" + svg + legend + "<details><summary>Per day, as a table</summary>\(table)</details></section>"
    }

    private func budgets() throws -> String {
        let statuses = try budgetStatus().sorted { $0.used > $1.used }
        func share(_ spent: Double, _ limit: Double?) -> String {
            guard let limit else { return "" }
            let text = "\(Self.dollars(spent)) of \(String(format: "$%.2f", limit))"
            return "<meter min=\"0\" max=\"\(limit)\" low=\"\(limit * 0.75)\" high=\"\(limit * 0.9)\" optimum=\"0\" value=\"\(min(spent, limit))\" aria-label=\"\(text)\"></meter> \(text)"
        }
        let table = ConsoleHTML.table(["config", "budget", "spent by", "today", "this month", "rate limits", "used"], statuses.map {
            [ConsoleHTML.escape($0.config), ConsoleHTML.escape($0.budget), ConsoleHTML.escape($0.key), share($0.spentToday, $0.usdPerDay),
             share($0.spentThisMonth, $0.usdPerMonth),
             [$0.requestsPerMinute.map { "\($0) requests/min" }, $0.tokensPerMinute.map { "\($0) tokens/min" }].compactMap { $0 }.joined(separator: ", "),
             $0.usdPerDay == nil && $0.usdPerMonth == nil ? "" : String(format: "%.1f%%", 100 * $0.used)]
        }, caption: "Budgets (\(statuses.count)), nearest to their limit first")
        return "<section id=\"budgets\"><h2>Budgets</h2>" + table + "</section>"
    }

    /// The latest LLM requests a guardrail or a budget had a say in, and how often each verdict came.
    private func verdicts() throws -> String {
        let events = try audit.events(limit: 1_000, type: AuditLog.EventType.llmRequest.rawValue)
        var counts: [String: Int] = [:]
        var rows: [[String]] = []
        let formatter = ISO8601DateFormatter()
        for event in events.reversed() {
            guard let detail = try? JSONDecoder().decode(JSONValue.self, from: Data(event.detail.utf8)) else { continue }
            var said = (detail["guardrails"]?.arrayValue ?? []).compactMap(\.stringValue)
            if let budget = detail["budget"]?.stringValue { said.append("budget: \(budget)") }
            if let refused = detail["refused"]?.stringValue { said.append("refused: \(refused)") }
            guard !said.isEmpty else { continue }
            for verdict in said { counts[Self.verdictKind(verdict), default: 0] += 1 }
            guard rows.count < 100 else { continue }
            rows.append([formatter.string(from: event.at), ConsoleHTML.escape(event.identity ?? ""), ConsoleHTML.escape(event.user ?? ""),
                         ConsoleHTML.escape(said.joined(separator: "; ")), detail["status"]?.numberValue.map { "\(Int($0))" } ?? "",
                         event.circuit.map { ConsoleHTML.link("/console/audit", ["circuit": "\($0)"], "\($0)") } ?? ""])
        }
        let summary = ConsoleHTML.table(["verdict", "requests"], counts.sorted { $0.value > $1.value }.map { [ConsoleHTML.escape($0.key), "\($0.value)"] },
                                        caption: "Verdicts among the last \(events.count) LLM requests")
        let table = ConsoleHTML.table(["time", "identity", "person", "verdicts", "status", "circuit"], rows, caption: "Requests with a verdict, newest first")
        return "<section id=\"guardrails\"><h2>Guardrail verdicts</h2>" + summary + table + "</section>"
    }

    /// Dollars with as many decimals as small amounts need.
    static func dollars(_ amount: Double) -> String {
        String(format: amount >= 1 ? "$%.2f" : amount >= 0.01 ? "$%.4f" : "$%.6f", amount)
    }

    /// A verdict without its particulars: "pii email,phone: private" → "pii: private".
    static func verdictKind(_ verdict: String) -> String {
        let guardrail = String(verdict.prefix { $0 != ":" && $0 != " " && $0 != "(" })
        if guardrail == "budget" || guardrail == "refused" { return guardrail }
        guard let separator = verdict.range(of: ": ", options: .backwards) else { return guardrail }
        return guardrail + ": " + verdict[separator.upperBound...]
    }
}
