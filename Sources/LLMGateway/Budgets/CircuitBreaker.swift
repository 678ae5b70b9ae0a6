import Foundation

/// Per provider: after `threshold` failures in a row the provider is skipped for `cooldown`;
/// then one request tries it again (half-open) and its outcome closes or reopens the breaker.
actor CircuitBreaker {
    private let threshold: Int
    private let cooldown: Duration
    private var failures: [String: Int] = [:]
    private var openUntil: [String: ContinuousClock.Instant] = [:]
    private var probing: Set<String> = []

    init(threshold: Int = 5, cooldown: Duration = .seconds(30)) {
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// Whether a request may go to `provider` now.
    func allows(_ provider: String) -> Bool {
        guard let until = openUntil[provider] else { return true }
        if ContinuousClock.now < until { return false }
        if probing.contains(provider) { return false }
        probing.insert(provider)
        return true
    }

    func succeeded(_ provider: String) {
        failures[provider] = 0
        openUntil[provider] = nil
        probing.remove(provider)
    }

    func failed(_ provider: String) {
        probing.remove(provider)
        let count = (failures[provider] ?? 0) + 1
        failures[provider] = count
        if count >= threshold { openUntil[provider] = .now + cooldown }
    }
}
