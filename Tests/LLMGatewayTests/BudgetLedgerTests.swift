import Foundation
import Shared
import XCTest
@testable import LLMGateway

/// A gateway's own spend is counted exactly once while it moves from recorded to reported to
/// the controller's totals, whatever arrives in between.
final class BudgetLedgerTests: XCTestCase {
    private let keys = BudgetLedger.keys(identity: "agent", teams: [], project: nil)
    private let budget = [LLMPolicy.Budget(identity: "agent", usdPerDay: 10)]

    private func spend(_ cost: Double) -> LLMUsageRecord {
        LLMUsageRecord(at: Date(), identity: "agent", project: nil, model: "m", provider: "p", inputTokens: 1, outputTokens: 1, costUSD: cost)
    }

    private func totals(_ cost: Double) -> LLMSpend {
        LLMSpend(day: "d", month: "m", daily: ["identity:agent": cost], monthly: ["identity:agent": cost])
    }

    /// The spend the ledger sees for the agent, read off the message of a budget it exceeds.
    private func seen(_ ledger: BudgetLedger) -> String? {
        ledger.check([LLMPolicy.Budget(identity: "agent", usdPerDay: 0)], identity: "agent", teams: [], project: nil)?.message
    }

    func test_spendRecordedDuringAReport_isCountedOnceAfterTheTotalsArrive() {
        let ledger = BudgetLedger()
        ledger.refreshed(totals(0), holding: 0)
        ledger.record(spend(4), keys: keys)
        let batch = ledger.takeUnreported()
        XCTAssertEqual(batch.count, 1)
        ledger.record(spend(3), keys: keys)  // arrives while the batch is being reported
        ledger.reported()
        XCTAssertTrue(seen(ledger)?.contains("$7.0000") == true, seen(ledger) ?? "nil")
        ledger.refreshed(totals(4), holding: ledger.reportsStored)  // the controller holds the reported 4, not yet the 3
        XCTAssertTrue(seen(ledger)?.contains("$7.0000") == true, "counted twice or lost: \(seen(ledger) ?? "nil")")
        XCTAssertNil(ledger.check(budget, identity: "agent", teams: [], project: nil))
        ledger.record(spend(3.5), keys: keys)
        XCTAssertNotNil(ledger.check(budget, identity: "agent", teams: [], project: nil), "4 + 3 + 3.5 is over the $10 budget")
    }

    func test_aFailedReport_keepsItsSpendAndSendsItAgain() {
        let ledger = BudgetLedger()
        ledger.refreshed(totals(1), holding: 0)
        ledger.record(spend(2), keys: keys)
        let batch = ledger.takeUnreported()
        ledger.record(spend(5), keys: keys)
        ledger.failed(batch)
        XCTAssertTrue(seen(ledger)?.contains("$8.0000") == true, seen(ledger) ?? "nil")
        let again = ledger.takeUnreported()
        XCTAssertEqual(again.map(\.costUSD), [2, 5], "the failed batch first, then what came after")
        ledger.reported()
        ledger.refreshed(totals(8), holding: ledger.reportsStored)
        XCTAssertTrue(seen(ledger)?.contains("$8.0000") == true, seen(ledger) ?? "nil")
    }

    func test_totalsFetchedBeforeAReportWasStored_doNotDropItsSpend() {
        let ledger = BudgetLedger()
        ledger.refreshed(totals(0), holding: 0)
        ledger.record(spend(6), keys: keys)
        _ = ledger.takeUnreported()
        let fetchBegan = ledger.reportsStored
        ledger.refreshed(totals(0), holding: fetchBegan)  // answered while the report is in flight
        XCTAssertTrue(seen(ledger)?.contains("$6.0000") == true, seen(ledger) ?? "nil")
        ledger.reported()
        ledger.refreshed(totals(0), holding: fetchBegan)  // a fetch that began before the report was stored
        XCTAssertTrue(seen(ledger)?.contains("$6.0000") == true, "spend dropped by totals that do not hold it: \(seen(ledger) ?? "nil")")
        ledger.refreshed(totals(6), holding: ledger.reportsStored)
        XCTAssertTrue(seen(ledger)?.contains("$6.0000") == true, seen(ledger) ?? "nil")
    }
}
