import Shared

/// The controller's model of the router mesh: which links routers should hold, which are up and
/// how fast, and the cheapest path between two routers. Loop-confined to the control plane.
final class Mesh {
    private(set) var graph = LinkGraph()
    private var linkAddresses: [String: String] = [:]
    private var configured: [LinkRow] = []
    private var latency: [String: [String: Double]] = [:]

    func routerOnline(_ router: String, linkAddress: String?) {
        linkAddresses[router] = linkAddress
    }

    func routerOffline(_ router: String) {
        linkAddresses[router] = nil
        latency[router] = nil
        for peer in latency.keys { latency[peer]?[router] = nil }
        graph.removeRouter(router)
    }

    func setConfigured(_ rows: [LinkRow]) {
        configured = rows
        for (a, peers) in latency { for b in peers.keys { refresh(a, b) } }
    }

    /// A router reports one of its links.
    func linkState(from router: String, peer: String, up: Bool, latencyMs: Double?) {
        if up {
            latency[router, default: [:]][peer] = max(latencyMs ?? 1, 0.01)
        } else {
            latency[router]?[peer] = nil
            latency[peer]?[router] = nil
        }
        refresh(router, peer)
    }

    private func refresh(_ a: String, _ b: String) {
        let measured = [latency[a]?[b], latency[b]?[a]].compactMap { $0 }
        guard let best = measured.min(), allowed(a, b) else { return graph.setLink(a, b, weight: nil) }
        graph.setLink(a, b, weight: best + cost(a, b))
    }

    private func allowed(_ a: String, _ b: String) -> Bool {
        configured.isEmpty || configured.contains { ($0.a == a && $0.b == b) || ($0.a == b && $0.b == a) }
    }

    private func cost(_ a: String, _ b: String) -> Double {
        configured.first { ($0.a == a && $0.b == b) || ($0.a == b && $0.b == a) }?.cost ?? 0
    }

    /// The links each router should dial: the configured ones, or else a full mesh in which
    /// the router with the smaller name dials.
    func assignments(online: Set<String>) -> [String: [LinkTarget]] {
        var result: [String: [LinkTarget]] = [:]
        for router in online { result[router] = [] }
        let pairs: [(String, String)] = configured.isEmpty
            ? online.sorted().flatMap { a in online.sorted().filter { $0 > a }.map { (a, $0) } }
            : configured.map { ($0.a, $0.b) }
        for (a, b) in pairs where online.contains(a) && online.contains(b) {
            if let address = linkAddresses[b] { result[a, default: []].append(LinkTarget(name: b, address: address)) }
        }
        return result
    }

    /// The routers `router` may hold a link with, among `routers`: those the configured links
    /// pair it with, or all of them when no link is configured (a full mesh).
    func linkPeers(of router: String, among routers: Set<String>) -> Set<String> {
        guard !configured.isEmpty else { return routers.subtracting([router]) }
        var peers = Set<String>()
        for link in configured {
            if link.a == router { peers.insert(link.b) }
            if link.b == router { peers.insert(link.a) }
        }
        return peers.intersection(routers)
    }

    func path(from source: String, to target: String, avoiding: Set<String> = []) -> (routers: [String], cost: Double)? {
        graph.path(from: source, to: target, avoiding: avoiding)
    }

    var status: [NetworkStatus.LinkStatus] {
        var result: [NetworkStatus.LinkStatus] = []
        for (a, peers) in graph.weights { for (b, weight) in peers where a < b { result.append(.init(a: a, b: b, latencyMs: weight)) } }
        return result.sorted { ($0.a, $0.b) < ($1.a, $1.b) }
    }
}
