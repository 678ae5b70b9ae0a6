import Prometheus
import Shared

/// What a tunneler exposes at /metrics beside its gateways' figures.
enum TunnelMetrics {
    static let circuitsOpen = Metrics.gauge("portless_tunnel_circuits_open", "Circuits this tunneler is an end of")
    static let routersConnected = Metrics.gauge("portless_tunnel_routers_connected", "Edge routers this tunneler holds a connection to")
    static let bytesSent = Metrics.counter("portless_tunnel_bytes_total", "Application bytes carried over the overlay", [("direction", "sent")])
    static let bytesReceived = Metrics.counter("portless_tunnel_bytes_total", "Application bytes carried over the overlay",
                                               [("direction", "received")])

    /// A dial of an intercepted service; `outcome` is ok, refused (no session or no router) or failed (the dial itself).
    static func dial(_ service: String, outcome: String) {
        Metrics.counter("portless_tunnel_dials_total", "Dials of intercepted services by outcome", [("service", service), ("outcome", outcome)])
            .increment()
    }
}
