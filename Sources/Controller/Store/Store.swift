import Foundation
import Shared

/// The controller's state: identities, services, policies, sessions, audit, usage. On one
/// SQLite file by default, or on PostgreSQL shared by several controllers; callers see the
/// same `read` / `write` either way. Thread-safe.
final class Store: Sendable {
    let backend: any StoreBackend
    let location: StoreLocation
    /// Writes that callers need not wait for (audit rows, session records) run here, in order.
    private let background = DispatchQueue(label: "portless.store.background")
    /// Background writes scheduled for later and not yet done.
    private let delayed = DispatchGroup()

    init(_ location: StoreLocation) throws {
        self.location = location
        switch location {
        case .sqlite(let path): backend = try SQLiteBackend(path: path)
        case .postgres(let database): backend = try PostgresBackend(location: database)
        }
    }

    convenience init(path: String) throws { try self.init(.sqlite(path: path)) }

    var dialect: SQLDialect { backend.dialect }

    func read<T>(_ body: (any StoreConnection) throws -> T) throws -> T { try backend.read(body) }

    /// Runs `body` in a transaction: all of it is kept, or none if it throws.
    func write<T>(_ body: (any StoreConnection) throws -> T) throws -> T { try backend.write(body) }

    /// How long a queued write keeps being retried while PostgreSQL is unreachable.
    static let backgroundRetryLimit: TimeInterval = 300

    /// Queues a write; it runs after every write queued before it. While the database cannot be
    /// reached (PostgreSQL restarting, a network blip) it is retried with backoff, and the writes
    /// behind it wait: the audit trail keeps its order and loses nothing to a short outage.
    func writeInBackground(_ what: String, _ work: @escaping @Sendable (any StoreConnection) throws -> Void) {
        background.async { [backend] in Self.run(what, work, on: backend) }
    }

    /// The same, `delay` seconds from now, so that what else is recorded meanwhile joins it (the
    /// audit trail appends a burst of events in one transaction). Reads that wait for background
    /// writes, and `close`, wait for this one too.
    func writeInBackground(_ what: String, after delay: TimeInterval, _ work: @escaping @Sendable (any StoreConnection) throws -> Void) {
        delayed.enter()
        background.asyncAfter(deadline: .now() + delay) { [backend, delayed] in
            Self.run(what, work, on: backend)
            delayed.leave()
        }
    }

    private static func run(_ what: String, _ work: @Sendable (any StoreConnection) throws -> Void, on backend: any StoreBackend) {
        let started = Date()
        var delay: TimeInterval = 0.1
        while true {
            do {
                try backend.write(work)
                return
            } catch let error as PostgresStoreError where error.isTransient && Date().timeIntervalSince(started) < Self.backgroundRetryLimit {
                ControllerLog.logger.warning("store unreachable; retrying a queued write", metadata: ["what": "\(what)", "error": "\(error)",
                                                                                                    "in_s": "\(delay)"])
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 2)
            } catch {
                ControllerLog.logger.error("background write failed", metadata: ["what": "\(what)", "error": "\(error)"])
                return
            }
        }
    }

    /// Waits until the writes queued so far are done (before reads that must see them).
    func waitForBackgroundWrites() {
        delayed.wait()
        background.sync {}
    }

    func close() {
        waitForBackgroundWrites()
        backend.close()
    }
}
