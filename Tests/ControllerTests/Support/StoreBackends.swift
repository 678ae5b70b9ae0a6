import Foundation
import XCTest
@testable import Controller
@testable import Shared

/// Both store backends for a test class: a PostgreSQL server of the class's own (started in
/// `class func setUp`, stopped in `tearDown`), and for each case a fresh SQLite file and a
/// fresh PostgreSQL database, so that every case runs the same steps on both.
final class StoreBackends: @unchecked Sendable {
    let directory: String
    let postgres: LocalPostgres

    init() throws {
        directory = NSTemporaryDirectory() + "portless-store-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        postgres = LocalPostgres(directory: directory + "/pg")
        do { try postgres.start() } catch { stop(); throw error }
    }

    func stop() {
        try? postgres.stop()
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: postgres.socketDirectory)
    }

    /// A fresh store of each kind, named for messages.
    func fresh() throws -> [(name: String, store: Store)] {
        let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        let sqlite = try Store(path: directory + "/\(id).db")
        try postgres.createDatabase("t\(id)")
        let shared = try Store(.postgres(PostgresLocation(url: postgres.url(database: "t\(id)"))))
        return [("sqlite", sqlite), ("postgres", shared)]
    }

    /// A second store on the same PostgreSQL database as `store` (a second controller).
    func another(_ store: Store) throws -> Store { try Store(store.location) }
}
