import Foundation
import Logging
import Shared

/// Batches the gateway's audit events and sends them to the controller a few times a second,
/// so a request never waits for the trail. Events that cannot be sent are kept (up to a bound)
/// and sent with the next batch. Recording is a lock and an append: it is on every request, so
/// an event can be recorded as the values it is made of (`record(making:)`) and encoded when its
/// batch is sent, off the request's path.
public final class AuditReporter: Sendable {
    public static let maxQueued = 100_000
    private struct State {
        var queue: [@Sendable () -> GatewayAuditEvent] = []
        var flushing = false
        var dropped = 0
    }
    private let control: GatewayControl
    private let logger: Logger
    private let state = Locked(State())

    public init(control: GatewayControl, logger: Logger) {
        self.control = control
        self.logger = logger
    }

    public func record(_ event: GatewayAuditEvent) { record(making: { event }) }

    /// Records the event `make` returns when its batch is sent (it may be asked again if that
    /// send fails): it must capture values, not read state that changes.
    public func record(making make: @escaping @Sendable () -> GatewayAuditEvent) {
        let startFlush: Bool = state.withLock { state in
            if state.queue.count >= Self.maxQueued { state.queue.removeFirst(); state.dropped += 1 }
            state.queue.append(make)
            guard !state.flushing else { return false }
            state.flushing = true
            return true
        }
        if startFlush {
            Task { [self] in
                try? await Task.sleep(for: .milliseconds(100))
                await self.flush()
            }
        }
    }

    /// Sends what is queued; gives up at `deadline` (a stopping gateway must not wait forever for
    /// an unreachable controller), saying how many events were not delivered.
    public func flush(deadline: ContinuousClock.Instant? = nil) async {
        while true {
            if let deadline, ContinuousClock.now >= deadline {
                let left = state.withLock { state in
                    state.flushing = false
                    return state.queue.count
                }
                if left > 0 { logger.error("stopping with audit events the controller did not receive", metadata: ["events": "\(left)"]) }
                return
            }
            let batch: [GatewayAuditEvent] = state.withLock { state in
                if state.queue.isEmpty { state.flushing = false }
                return Array(state.queue.prefix(500))
            }.map { $0() }
            if batch.isEmpty { break }
            do {
                try await control.audit(batch)
                state.withLock { $0.queue.removeFirst(min(batch.count, $0.queue.count)) }
            } catch {
                logger.warning("audit events not delivered yet; retrying", metadata: ["queued": "\(state.withLock { $0.queue.count })", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
        let dropped = state.withLock { state in
            let dropped = state.dropped
            state.dropped = 0
            return dropped
        }
        if dropped > 0 { logger.error("audit queue overflowed while the controller was unreachable", metadata: ["dropped": "\(dropped)"]) }
    }
}
