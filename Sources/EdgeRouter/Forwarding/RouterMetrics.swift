import Prometheus
import Shared

/// What a router exposes at /metrics. Counters are bumped where things happen; gauges that
/// mirror live state (circuits, links) are set from it when scraped.
final class RouterMetrics {
    let circuitsOpen = Metrics.gauge("portless_router_circuits_open", "Circuits this router carries now")
    let circuitsOpened = Metrics.counter("portless_router_circuits_opened_total", "Circuits installed on this router")
    let dialsFailed = Metrics.counter("portless_router_circuit_setups_failed_total", "Circuit set-ups that failed at this router",
                                      [("stage", "dial")])
    let routesFailed = Metrics.counter("portless_router_circuit_setups_failed_total", "Circuit set-ups that failed at this router",
                                       [("stage", "route")])
    let bytesToHost = Metrics.counter("portless_router_bytes_total", "Circuit bytes forwarded (sealed frames, headers included)",
                                      [("direction", "to_host")])
    let bytesToDialer = Metrics.counter("portless_router_bytes_total", "Circuit bytes forwarded (sealed frames, headers included)",
                                        [("direction", "to_dialer")])
    let reroutes = Metrics.counter("portless_router_reroutes_total", "Circuit sides moved onto another link")
    let terminators = Metrics.gauge("portless_router_terminators", "Terminators bound at this router")
    let edgeConnections = Metrics.gauge("portless_router_edge_connections", "Tunnelers connected to this router")
    private var links: [String: (up: Gauge, rtt: Gauge)] = [:]

    /// A link's state and round trip; a link that went down keeps its series at 0.
    func link(_ peer: String, up: Bool, rttMs: Double?) {
        let gauges = links[peer] ?? {
            let made = (Metrics.gauge("portless_router_link_up", "1 while the link to a peer router is up", [("peer", peer)]),
                        Metrics.gauge("portless_router_link_rtt_seconds", "Smoothed round trip of the link to a peer router", [("peer", peer)]))
            links[peer] = made
            return made
        }()
        gauges.up.set(to: up ? 1.0 : 0.0)
        if let rttMs { gauges.rtt.set(to: rttMs / 1000) }
    }

    var knownLinks: Dictionary<String, (up: Gauge, rtt: Gauge)>.Keys { links.keys }
}
