import ArgumentParser
import Foundation
import Shared

/// `portless-controller bench-decisions` (hidden; Benchmarks/run uses it): loads a network of
/// the given size into a fresh store (SQLite, or PostgreSQL in a cluster of its own), then times dial decisions against the permission
/// snapshot the controller builds from it, beside plain hash-set lookups of the same pairs — the
/// floor any O(1) decision can reach.
struct DecisionBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-decisions", abstract: "Time dial decisions at scale.",
                                                    shouldDisplay: false)
    @Option(help: "Identities to load.") var identities = 100_000
    @Option(help: "Services to load.") var services = 10_000
    @Option(help: "Service policies to load (dial and bind, half each).") var policies = 1_000
    @Option(help: "Decisions to time.") var decisions = 1_000_000
    @Option(help: "sqlite, or postgres (a cluster started for the run).") var store = "sqlite"

    func run() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portless-decisions-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let postgres = LocalPostgres(directory: directory + "/postgres")
        let store: Store
        switch self.store {
        case "sqlite": store = try Store(path: directory + "/controller.sqlite")
        case "postgres":
            try postgres.start()
            store = try Store(.postgres(try PostgresLocation(url: postgres.url)))
        default: throw ValidationError("--store is sqlite or postgres")
        }
        defer {
            store.close()
            try? postgres.stop()
            try? FileManager.default.removeItem(atPath: postgres.socketDirectory)
        }
        let backend = self.store == "postgres" ? "PostgreSQL" : "SQLite"
        let network = Self.network(identities: identities, services: services, policies: policies)
        let loadStart = ContinuousClock.now
        try store.write { db in
            try db.insert(contentsOf: network.identities)
            try db.insert(contentsOf: network.services)
            try db.insert(contentsOf: network.policies)
        }
        let loaded = ContinuousClock.now - loadStart
        let buildStart = ContinuousClock.now
        let snapshot = try PolicyState(store: store).snapshot
        let built = ContinuousClock.now - buildStart

        var generator = SystemRandomNumberGenerator()
        let pairs = (0..<decisions).map { _ in
            (network.identities[Int.random(in: 0..<identities, using: &generator)].name,
             network.services[Int.random(in: 0..<services, using: &generator)].name)
        }
        var granted = 0
        let decideStart = ContinuousClock.now
        for (identity, service) in pairs where snapshot.permits(identity, .dial, service) { granted += 1 }
        let decided = ContinuousClock.now - decideStart

        let keys = Set(pairs.prefix(decisions / 2).map { $0.0 + "|" + $0.1 })
        let probes = pairs.map { $0.0 + "|" + $0.1 }
        var found = 0
        let lookupStart = ContinuousClock.now
        for key in probes where keys.contains(key) { found += 1 }
        let looked = ContinuousClock.now - lookupStart

        let rate = Double(decisions) / decided.seconds, floor = Double(decisions) / looked.seconds
        print("network: \(identities) identities, \(services) services, \(policies) policies (\(backend))")
        print(String(format: "  loaded into %@ in %.1f s; permission snapshot built in %.2f s", backend, loaded.seconds, built.seconds))
        print(String(format: "  dial decisions: %.2f M/s (%.0f ns each, %d granted of %d)", rate / 1e6, 1e9 / rate, granted, decisions))
        print(String(format: "  reference, a hash-set lookup of the same pairs: %.2f M/s (%.0f ns each, %d found); ratio %.2f",
                     floor / 1e6, 1e9 / floor, found, rate / floor))
    }

    /// Identities carry one of 100 team attributes and one of 10 levels; services one of 100
    /// areas. Even policies let team k%100 dial area (7k)%100; odd ones let agent-k host area k%100.
    static func network(identities: Int, services: Int, policies: Int)
        -> (identities: [IdentityRow], services: [ServiceRow], policies: [ServicePolicyRow]) {
        let now = Date()
        let people = (0..<identities).map { IdentityRow(name: "agent-\($0)", roles: ["team-\($0 % 100)", "level-\($0 % 10)"], enrolled: true, createdAt: now) }
        let offered = (0..<services).map { ServiceRow(name: "service-\($0)", roles: ["area-\($0 % 100)"], configs: []) }
        let rules = (0..<policies).map { k in
            k % 2 == 0
                ? ServicePolicyRow(name: "dial-\(k)", type: .dial, identityRoles: ["#team-\(k % 100)"], serviceRoles: ["#area-\((k * 7) % 100)"])
                : ServicePolicyRow(name: "bind-\(k)", type: .bind, identityRoles: ["@agent-\(k)"], serviceRoles: ["#area-\(k % 100)"])
        }
        return (people, offered, rules)
    }
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
