import Foundation
import Shared

/// What `topology up` started, kept in STATE/topology.json for `status` and `down`.
struct TopologyState: Codable {
    struct Process: Codable {
        var name: String
        var kind: String
        var pid: Int32
        var log: String
    }
    struct Intercept: Codable {
        var tunneler: String
        var service: String
        var address: String
    }
    var processes: [Process]
    var intercepts: [Intercept]
    var controller: String?

    static func path(_ state: String) -> String { state + "/topology.json" }
}
