import Prometheus
import Shared

/// What a controller exposes at /metrics: every audited event by type (sessions issued and
/// revoked, circuits opened, closed, rerouted and refused, enrollments, policy changes, and what
/// gateways reported), dial decisions, and gauges of the network's live state.
enum ControllerMetrics {
    static let dialsGranted = Metrics.counter("portless_controller_dials_total", "Dials decided by this controller", [("outcome", "granted")])
    static let dialsRefused = Metrics.counter("portless_controller_dials_total", "Dials decided by this controller", [("outcome", "refused")])
    static let circuitsOpen = Metrics.gauge("portless_controller_circuits_open", "Circuits open in the network")
    static let routersOnline = Metrics.gauge("portless_controller_routers_online", "Routers connected to this controller")
    static let terminators = Metrics.gauge("portless_controller_terminators", "Terminators bound in the network")
    static let linksUp = Metrics.gauge("portless_controller_links_up", "Router links reported up")

    private static let events = Locked<[String: Counter]>([:])

    static func recorded(_ type: String) {
        let counter = events.withLock { known in
            if let counter = known[type] { return counter }
            let counter = Metrics.counter("portless_controller_audit_events_total", "Events written to the audit trail, by type", [("type", type)])
            known[type] = counter
            return counter
        }
        counter.increment()
    }
}
