import Foundation
import Logging
import NIOCore
import PostgresNIO

/// How controllers sharing one PostgreSQL database hear of each other's changes: a change is
/// announced with `NOTIFY` after it commits, and every other controller, listening on a
/// connection of its own, reloads what it keeps in memory. On SQLite there is one controller
/// and nothing to hear. A listener that loses its connection reconnects with backoff and then
/// reloads anyway: it may have missed announcements meanwhile.
final class StoreChanges: @unchecked Sendable {
    // @unchecked: `listener` and `stopped` are touched under `lock` only.
    static let channel = "portless_changes"
    let origin: String
    private let store: Store
    private let logger = ControllerLog.logger
    private let lock = NSLock()
    private var listener: PostgresConnection?
    private var stopped = false

    init(store: Store, origin: String) {
        self.store = store
        self.origin = origin
    }

    /// Tells the other controllers that `topic` changed (after the change committed).
    func announce(_ topic: String) {
        guard store.dialect == .postgres else { return }
        store.writeInBackground("announce \(topic)") { [origin] db in
            try db.execute("SELECT pg_notify(?, ?)", [Self.channel, "\(topic) \(origin)"])
        }
    }

    /// Calls `changed` (on a NIO thread; hop to your own) for every change another controller announces.
    func listen(_ changed: @escaping @Sendable (_ topic: String) -> Void) {
        guard case .postgres = store.location, let backend = store.backend as? PostgresBackend else { return }
        connect(backend, changed: changed, backoffMs: 250, reconnecting: false)
    }

    func stop() {
        let connection: PostgresConnection? = lock.withLock {
            stopped = true
            defer { listener = nil }
            return listener
        }
        try? connection?.close().wait()
    }

    private func connect(_ backend: PostgresBackend, changed: @escaping @Sendable (String) -> Void, backoffMs: Int, reconnecting: Bool) {
        DispatchQueue.global().async { [self] in
            guard !lock.withLock({ stopped }) else { return }
            do {
                let connection = try backend.connectForNotifications()
                connection.addListener(channel: Self.channel) { [origin] _, notification in
                    let parts = notification.payload.split(separator: " ", maxSplits: 1).map(String.init)
                    guard parts.count == 2, parts[1] != origin else { return }
                    changed(parts[0])
                }
                _ = try connection.query(PostgresQuery(unsafeSQL: "LISTEN \(Self.channel)"), logger: logger).wait()
                lock.withLock { listener = connection }
                logger.info("listening for other controllers' changes")
                if reconnecting { changed("resync") }
                connection.closeFuture.whenComplete { [self] _ in
                    guard !lock.withLock({ stopped }) else { return }
                    logger.warning("lost the PostgreSQL listener connection; reconnecting")
                    retry(backend, changed: changed, backoffMs: 250)
                }
            } catch {
                logger.warning("cannot listen for changes on PostgreSQL; retrying", metadata: ["error": "\(error)", "in_ms": "\(backoffMs)"])
                retry(backend, changed: changed, backoffMs: backoffMs)
            }
        }
    }

    private func retry(_ backend: PostgresBackend, changed: @escaping @Sendable (String) -> Void, backoffMs: Int) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(backoffMs)) { [self] in
            connect(backend, changed: changed, backoffMs: min(backoffMs * 2, 5_000), reconnecting: true)
        }
    }
}
