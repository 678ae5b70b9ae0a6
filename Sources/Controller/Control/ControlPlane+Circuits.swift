import Foundation
import Shared

// Choosing a terminator and a path for a dial, and installing the path on its routers.
extension ControlPlane {
    func createCircuit(sessionID: String, service: String, dialer: String, router: String, reply: @escaping ControlPeer.Reply) {
        let snapshot = policies.snapshot
        // The router has verified the session's signature, holder and expiry; what only the
        // controller knows is whether it was revoked and whether policy still allows it.
        if let known = sessions[sessionID]?.claims, known.identity != dialer || known.service != service {
            return reply(.failure(message: "session \(sessionID) does not belong to '\(dialer)' for '\(service)'"))
        }
        guard revoked[sessionID] == nil, snapshot.permits(dialer, .dial, service) else {
            return reply(.failure(message: "identity '\(dialer)' may no longer dial '\(service)' (session revoked)"))
        }
        let candidates = terminators.values.filter { $0.service == service && routers[$0.router] != nil }
        guard !candidates.isEmpty else {
            return reply(.failure(message: "service '\(service)' has no terminator: no tunneler hosting it is connected"))
        }
        // Cheapest path first; among equals, the terminator with fewer circuits.
        let load = Dictionary(grouping: circuits.values, by: \.terminatorID).mapValues(\.count)
        let routed = candidates.compactMap { terminator in
            mesh.path(from: router, to: terminator.router).map { (terminator, $0.routers, $0.cost + Double(load[terminator.id, default: 0]) * 0.01) }
        }
        guard let (terminator, path, _) = routed.min(by: { $0.2 < $1.2 }) else {
            let hosts = Set(candidates.map(\.router)).sorted().joined(separator: ", ")
            return reply(.failure(message: "no path from router '\(router)' to the routers hosting '\(service)' (\(hosts)): links are down"))
        }
        nextCircuit += 1
        let circuit = Circuit(id: nextCircuit, service: service, dialer: dialer, host: terminator.identity, router: router,
                              dialSessionID: sessionID, terminatorID: terminator.id, path: path)
        install(circuit, hop: path.count - 1) { [weak self] error in
            guard let self else { return }
            if let error {
                let installed = Array(path.dropFirst())
                for name in installed { self.routers[name]?.notify(.revoke(sessionIDs: [], circuitIDs: [circuit.id], reason: "path setup failed")) }
                return reply(.failure(message: "could not set up the path \(path.joined(separator: " → ")): \(error)"))
            }
            self.circuits[circuit.id] = circuit
            self.audit.record(.circuitOpened, identity: dialer, service: service, circuit: circuit.id,
                              detail: "host=\(terminator.identity) path=\(path.joined(separator: ">"))")
            reply(.circuitRoute(circuitID: circuit.id, terminatorID: terminator.id, hostIdentity: terminator.identity,
                                nextHop: path.count > 1 ? path[1] : nil))
        }
    }

    /// Installs the circuit on `path[hop]`, then on the routers before it, back to the second:
    /// each router is ready before the one upstream starts sending to it.
    private func install(_ circuit: Circuit, hop: Int, completion: @escaping (Error?) -> Void) {
        guard hop >= 1 else { return completion(nil) }
        let path = circuit.path
        guard let peer = routers[path[hop]] else { return completion(ControlError.refused("router '\(path[hop])' is offline")) }
        let isLast = hop == path.count - 1
        peer.request(.installRoute(circuitID: circuit.id, service: circuit.service, dialer: circuit.dialer,
                                   dialSessionID: circuit.dialSessionID, previous: path[hop - 1],
                                   next: isLast ? nil : path[hop + 1], terminatorID: isLast ? circuit.terminatorID : nil)) { [weak self] result in
            if case .failure(let error) = result.unwrapped { return completion(error) }
            self?.install(circuit, hop: hop - 1, completion: completion) ?? completion(ControlError.connectionClosed)
        }
    }

    /// Tells every router which links to hold.
    func pushLinkAssignments() {
        let assignments = mesh.assignments(online: Set(routers.keys))
        for (name, targets) in assignments { routers[name]?.notify(.linkTo(targets)) }
    }

    func reloadLinks(_ rows: [LinkRow]) {
        mesh.setConfigured(rows)
        pushLinkAssignments()
    }
}
