import Foundation
import GatewayKit
import Shared

/// Per provider: after `threshold` failures in a row the provider is skipped for `cooldown`;
/// then one request tries it again (half-open) and its outcome closes or reopens the breaker.
/// A lock, not an actor: it sits on every request's path.
final class CircuitBreaker: Sendable {
    private struct State {
        var failures: [String: Int] = [:]
        var openUntil: [String: ContinuousClock.Instant] = [:]
        var probing: Set<String> = []
    }
    private let threshold: Int
    private let cooldown: Duration
    private let state = Locked(State())
    /// The gateway's service, for the providers' health in /metrics.
    private let service: String

    init(service: String = "", threshold: Int = 5, cooldown: Duration = .seconds(30)) {
        self.service = service
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// Whether a request may go to `provider` now.
    func allows(_ provider: String) -> Bool {
        state.withLock { state in
            guard let until = state.openUntil[provider] else { return true }
            if ContinuousClock.now < until { return false }
            if state.probing.contains(provider) { return false }
            state.probing.insert(provider)
            return true
        }
    }

    func succeeded(_ provider: String) {
        let recovered = state.withLock { state -> Bool in
            guard state.failures[provider] != 0 || state.openUntil[provider] != nil || state.probing.contains(provider) else { return false }
            state.failures[provider] = 0
            state.openUntil[provider] = nil
            state.probing.remove(provider)
            return true
        }
        if recovered { GatewayMetrics.upstream(gateway: "llm", service: service, upstream: provider, up: true) }
    }

    /// A provider call ended with `error`: a sign the provider is unwell counts; a request the
    /// provider refused (4xx) shows it answering, which is success for the breaker.
    func record(_ error: ProviderError, for provider: String) {
        if error.countsAgainstProvider { failed(provider) } else { succeeded(provider) }
    }

    /// A call ended without telling anything about the provider (cancelled): a half-open probe
    /// slot is freed, nothing is counted.
    func released(_ provider: String) {
        state.withLock { _ = $0.probing.remove(provider) }
    }

    func failed(_ provider: String) {
        let opened = state.withLock { state -> Bool in
            state.probing.remove(provider)
            let count = (state.failures[provider] ?? 0) + 1
            state.failures[provider] = count
            if count >= threshold { state.openUntil[provider] = .now + cooldown }
            return count >= threshold
        }
        GatewayMetrics.upstreamFailure(gateway: "llm", service: service, upstream: provider)
        // Up until its breaker opens: a single failure is retried, not a sign of an outage.
        GatewayMetrics.upstream(gateway: "llm", service: service, upstream: provider, up: !opened)
    }
}
