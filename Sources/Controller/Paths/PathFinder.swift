/// Cheapest paths over the router mesh (Dijkstra). A link's weight is its measured latency plus
/// its configured cost plus a small per-hop charge, so that among equally fast paths the one
/// with fewer routers wins.
struct LinkGraph: Sendable {
    static let perHopCost = 0.05

    /// Undirected links that are up, with their weights in milliseconds.
    private(set) var weights: [String: [String: Double]] = [:]

    mutating func setLink(_ a: String, _ b: String, weight: Double?) {
        if let weight {
            weights[a, default: [:]][b] = weight
            weights[b, default: [:]][a] = weight
        } else {
            weights[a]?[b] = nil
            weights[b]?[a] = nil
        }
    }

    mutating func removeRouter(_ router: String) {
        if let peers = weights[router] { for peer in peers.keys { weights[peer]?[router] = nil } }
        weights[router] = nil
    }

    func hasLink(_ a: String, _ b: String) -> Bool { weights[a]?[b] != nil }

    /// The cheapest path from `source` to `target` (both included) and its cost, or nil; it
    /// never passes through a router in `avoiding`.
    func path(from source: String, to target: String, avoiding: Set<String> = []) -> (routers: [String], cost: Double)? {
        if source == target { return ([source], 0) }
        var distance: [String: Double] = [source: 0]
        var previous: [String: String] = [:]
        var done: Set<String> = avoiding.subtracting([source, target])
        while true {
            // Meshes are small (tens of routers): a linear scan beats a heap here.
            guard let (node, cost) = distance.filter({ !done.contains($0.key) }).min(by: { $0.value < $1.value }) else { return nil }
            if node == target { break }
            done.insert(node)
            for (peer, weight) in weights[node] ?? [:] where !done.contains(peer) {
                let candidate = cost + weight + Self.perHopCost
                if candidate < distance[peer] ?? .infinity {
                    distance[peer] = candidate
                    previous[peer] = node
                }
            }
        }
        var routers = [target]
        while let step = previous[routers[0]] { routers.insert(step, at: 0) }
        return routers.first == source ? (routers, distance[target] ?? 0) : nil
    }
}
