import Foundation
import Logging
import Shared

/// Batches the gateway's audit events and sends them to the controller a few times a second,
/// so a request never waits for the trail. Events that cannot be sent are kept (up to a bound)
/// and sent with the next batch.
public actor AuditReporter {
    static let maxQueued = 100_000
    private let control: GatewayControl
    private let logger: Logger
    private var queue: [GatewayAuditEvent] = []
    private var flushing = false
    private var dropped = 0

    public init(control: GatewayControl, logger: Logger) {
        self.control = control
        self.logger = logger
    }

    public func record(_ event: GatewayAuditEvent) {
        if queue.count >= Self.maxQueued { queue.removeFirst(); dropped += 1 }
        queue.append(event)
        if !flushing {
            flushing = true
            Task { try? await Task.sleep(for: .milliseconds(100)); await self.flush() }
        }
    }

    public func flush() async {
        defer { flushing = false }
        while !queue.isEmpty {
            let batch = Array(queue.prefix(500))
            do {
                try await control.audit(batch)
                queue.removeFirst(batch.count)
            } catch {
                logger.warning("audit events not delivered yet; retrying", metadata: ["queued": "\(queue.count)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
        if dropped > 0 {
            logger.error("audit queue overflowed while the controller was unreachable", metadata: ["dropped": "\(dropped)"])
            dropped = 0
        }
    }
}
