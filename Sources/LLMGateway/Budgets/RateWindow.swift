/// Requests and tokens in the last minute, for requests-per-minute and tokens-per-minute
/// limits. Amortized O(1): entries leave from the front as they age.
struct RateWindow {
    static let span: Duration = .seconds(60)
    private var times: [ContinuousClock.Instant] = []
    private var tokens: [Int] = []
    private var head = 0
    private(set) var tokenSum = 0

    var requests: Int { times.count - head }

    mutating func prune(now: ContinuousClock.Instant) {
        while head < times.count, now - times[head] >= Self.span {
            tokenSum -= tokens[head]
            head += 1
        }
        if head > 1_024, head * 2 > times.count {
            times.removeFirst(head)
            tokens.removeFirst(head)
            head = 0
        }
    }

    mutating func add(at now: ContinuousClock.Instant, tokens count: Int) {
        prune(now: now)
        times.append(now)
        tokens.append(count)
        tokenSum += count
    }
}
