import Foundation
import GatewayKit
import Shared

// What the gateway spends: each call's cost into the ledger, and the ledger's exchange of
// reports and totals with the controller.
extension LLMGateway {
    func account(_ usage: TokenUsage, caller: Caller, project: String?, model: ModelConfig, provider: ProviderConfig, keys: [String],
                 record: inout AuditRecord) async {
        let cost = model.cost(usage)
        record.model = model.name; record.provider = provider.name
        record.usage = usage; record.cost = cost; record.unpriced = !model.isPriced
        ledger.record(LLMUsageRecord(at: Date(), identity: caller.identity, user: caller.person?.name, project: project, model: model.name,
                                     provider: provider.name, inputTokens: usage.input, outputTokens: usage.output, costUSD: cost,
                                     cachedInputTokens: usage.cachedInput, cacheWriteTokens: usage.cacheWrite, reasoningTokens: usage.reasoning,
                                     estimated: usage.estimated ? true : nil, unpriced: model.isPriced ? nil : true), keys: keys)
    }

    /// The controller's spend totals, fetched once before the first budget check (after a
    /// restart the gateway starts from what the controller kept, not from zero).
    func loadSpend() async {
        guard !(ledger.loaded) else { return }
        for attempt in 0..<20 {
            let holding = ledger.reportsStored
            if let spend = try? await control.spend() {
                ledger.refreshed(spend, holding: holding)
                return
            }
            if attempt < 19 { try? await Task.sleep(for: .milliseconds(100)) }
        }
        logger.warning("budgets checked without the controller's totals: it is unreachable")
    }

    /// Reports what was used since the last report; every few seconds fetches the controller's
    /// totals (what other gateways spent). Not after every report: the totals are a query over the
    /// month's usage at the controller, and this gateway's own spend is counted here meanwhile.
    func reportUsage(refreshSpend: Bool) async {
        let batch = ledger.takeUnreported()
        if !batch.isEmpty {
            do {
                try await control.reportUsage(batch)
                ledger.reported()
            } catch {
                ledger.failed(batch)
                logger.warning("usage not reported yet; kept", metadata: ["records": "\(batch.count)", "error": "\(error)"])
                return
            }
        }
        guard refreshSpend else { return }
        let holding = ledger.reportsStored
        if let spend = try? await control.spend() { ledger.refreshed(spend, holding: holding) }
    }
}
