import ArgumentParser
import Foundation
import Shared

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "usage", abstract: "LLM usage and cost, as the controller recorded it.")
    @Option(help: "identity, team, user (the person an agent acted for), project, model or provider") var by: String = "identity"
    @Option(help: "From this UTC day (YYYY-MM-DD).") var since: String?
    @Flag(help: "JSON instead of a table.") var json = false
    @Flag(help: "Cost per UTC day (the last 30 days unless --since).") var daily = false
    @Flag(help: "Each budget of the LLM policies, and how much of it is spent.") var budgets = false
    @OptionGroup var options: ProfileOption
    func run() async throws {
        if budgets {
            let statuses = try await options.client().get("/v1/llm/budgets", as: [LLMBudgetStatus].self)
            if json { return printJSON(statuses) }
            print("\("budget".padding(toLength: 22, withPad: " ", startingAt: 0))\("spent by".padding(toLength: 28, withPad: " ", startingAt: 0))\("today".leftPadded(22))\("this month".leftPadded(24))")
            for status in statuses {
                let today = status.usdPerDay.map { String(format: "%.4f / %.2f", status.spentToday, $0) } ?? String(format: "%.4f", status.spentToday)
                let month = status.usdPerMonth.map { String(format: "%.4f / %.2f", status.spentThisMonth, $0) } ?? String(format: "%.4f", status.spentThisMonth)
                print("\(status.budget.padding(toLength: 22, withPad: " ", startingAt: 0))\(status.key.padding(toLength: 28, withPad: " ", startingAt: 0))\(today.leftPadded(22))\(month.leftPadded(24))")
            }
            return
        }
        if daily {
            let query = queryString([("by", by)] + (since.map { [("since", $0)] } ?? []))
            let rows = try await options.client().get("/v1/llm/usage/daily" + query, as: [LLMDailyUsage].self)
            if json { return printJSON(rows) }
            for row in rows {
                print("\(row.day)  \(row.key.padding(toLength: 24, withPad: " ", startingAt: 0))\(String(row.requests).leftPadded(10))\(String(format: "%.6f", row.costUSD).leftPadded(14))")
            }
            return
        }
        var path = "/v1/llm/usage?by=\(by)"
        if let since { path += "&since=\(since)" }
        let rows = try await options.client().get(path, as: [LLMUsageRow].self)
        if json { return printJSON(rows) }
        print("\(by.padding(toLength: 24, withPad: " ", startingAt: 0))\("requests".leftPadded(10))\("input tok".leftPadded(12))\("cached".leftPadded(10))\("output tok".leftPadded(12))\("reasoning".leftPadded(10))\("cost USD".leftPadded(14))  notes")
        for row in rows {
            var notes: [String] = []
            if let estimated = row.estimatedRequests, estimated > 0 { notes.append("\(estimated) estimated") }
            if let unpriced = row.unpricedRequests, unpriced > 0 { notes.append("\(unpriced) unpriced") }
            // A model without a price is not free: its cost is shown as unknown, never as $0.
            let cost = (row.unpricedRequests ?? 0) == row.requests && row.requests > 0 ? "unpriced"
                : String(format: "%.6f", row.costUSD) + ((row.unpricedRequests ?? 0) > 0 ? "+" : "")
            print("\(row.key.padding(toLength: 24, withPad: " ", startingAt: 0))\(String(row.requests).leftPadded(10))\(String(row.inputTokens).leftPadded(12))\(String(row.cachedInputTokens ?? 0).leftPadded(10))\(String(row.outputTokens).leftPadded(12))\(String(row.reasoningTokens ?? 0).leftPadded(10))\(cost.leftPadded(14))  \(notes.joined(separator: ", "))")
        }
    }
}
