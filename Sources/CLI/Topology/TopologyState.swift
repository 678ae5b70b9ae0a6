import Foundation
import Shared

/// What `topology up`/`apply` started, kept in STATE/topology.json for `status`, `apply` and `down`.
struct TopologyState: Codable {
    struct Process: Codable {
        var name: String
        var kind: String
        var pid: Int32
        var log: String
        /// Where it serves Prometheus metrics (`http://ADDRESS/metrics`), for those that do.
        var metrics: String?
    }
    struct Intercept: Codable {
        var tunneler: String
        var service: String
        var address: String
    }
    var processes: [Process]
    var intercepts: [Intercept]
    var controller: String?
    /// Addresses chosen for `:0` ports, kept so that re-applying a file reuses them
    /// ("router/r1/edge", "app/hello-http", "intercept/laptop/hello").
    var ports: [String: String]?
    /// What each process was started with, so `apply` restarts exactly the ones that changed.
    var launched: [String: [String]]?
    /// Present when the network was started with `--netns`.
    var netns: NetworkNamespaces?
    /// The PostgreSQL cluster `up` started for `database: postgres` (its directory).
    var postgres: String?
    /// Every controller's management API, the first one's first.
    var controllers: [String]?

    static func path(_ state: String) -> String { state + "/topology.json" }

    static func load(_ state: String) -> TopologyState? {
        try? Files.readJSON(TopologyState.self, from: path(state))
    }
}
