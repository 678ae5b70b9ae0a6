import Foundation
import Shared

// Choosing a terminator and a path for a dial, and installing the path on its routers.
extension ControlPlane {
    func createCircuit(sessionID: String, service: String, dialer: String, router: String,
                       excluding: Set<String> = [], reply answer: @escaping ControlPeer.Reply) {
        // Counted once per dial: a retry with another terminator answers through this reply.
        let reply: ControlPeer.Reply = !excluding.isEmpty ? answer : { message in
            if case .failure = message { ControllerMetrics.dialsRefused.increment() } else { ControllerMetrics.dialsGranted.increment() }
            answer(message)
        }
        let snapshot = policies.snapshot
        // The router has verified the session's signature, holder and expiry; what only the
        // controller knows is whether it was revoked and whether policy still allows it.
        if let known = sessions[sessionID]?.claims, known.identity != dialer || known.service != service {
            return reply(.failure(message: "session \(sessionID) does not belong to '\(dialer)' for '\(service)'"))
        }
        guard revoked[sessionID] == nil, snapshot.permits(dialer, .dial, service) else {
            return reply(.failure(message: "identity '\(dialer)' may no longer dial '\(service)' (session revoked)"))
        }
        let open = circuits.open(by: dialer)
        guard open < limits.circuitsPerIdentity else {
            return reply(.failure(message: "identity '\(dialer)' has \(open) circuits open, its limit (circuitsPerIdentity in controller.json); close some first"))
        }
        let candidates = terminators.values.filter { $0.service == service && routers[$0.router] != nil && !excluding.contains($0.id) }
        guard !candidates.isEmpty else {
            return reply(.failure(message: excluding.isEmpty
                ? "service '\(service)' has no terminator: no tunneler hosting it is connected"
                : "service '\(service)': every terminator refused the circuit (is the hosted service running?)"))
        }
        // Best precedence first (required, default, failed); then the cheapest path plus the
        // terminator's cost; among equals, the terminator with fewer circuits.
        let now = Date()
        let routed = candidates.compactMap { terminator in
            mesh.path(from: router, to: terminator.router).map {
                (terminator, $0.routers, $0.cost + terminator.cost + Double(circuits.load(of: terminator.id)) * 0.01)
            }
        }
        let best = routed.map { $0.0.effectivePrecedence(at: now) }.min()
        guard let (terminator, path, _) = routed.filter({ $0.0.effectivePrecedence(at: now) == best }).min(by: { $0.2 < $1.2 }) else {
            let hosts = Set(candidates.map(\.router)).sorted().joined(separator: ", ")
            return reply(.failure(message: "no path from router '\(router)' to the routers hosting '\(service)' (\(hosts)): links are down"))
        }
        nextCircuit += Self.circuitIDStride
        let grant: String
        do {
            grant = try CircuitGrant(circuit: nextCircuit, service: service, dialer: dialer, host: terminator.identity,
                                     exp: now.addingTimeInterval(CircuitGrant.lifetime)).signed(with: secrets.signingKey)
        } catch {
            return reply(.failure(message: "could not sign the circuit grant: \(error)"))
        }
        let circuit = Circuit(id: nextCircuit, service: service, dialer: dialer, host: terminator.identity, router: router,
                              dialSessionID: sessionID, terminatorID: terminator.id, path: path, grant: grant)
        install(circuit, hop: path.count - 1) { [weak self] error in
            guard let self else { return }
            if let error {
                let installed = Array(path.dropFirst())
                for name in installed { self.routers[name]?.notify(.revoke(sessionIDs: [], circuitIDs: [circuit.id], reason: "path setup failed")) }
                // Another terminator may take it: a refusing one is skipped.
                if candidates.count > 1 {
                    self.terminators[terminator.id]?.failedUntil = Date().addingTimeInterval(Self.failedTerminatorPenalty)
                    return self.createCircuit(sessionID: sessionID, service: service, dialer: dialer, router: router,
                                              excluding: excluding.union([terminator.id]), reply: reply)
                }
                return reply(.failure(message: "could not set up the path \(path.joined(separator: " → ")): \(error)"))
            }
            self.circuits[circuit.id] = circuit
            self.audit.record(.circuitOpened, identity: dialer, service: service, circuit: circuit.id,
                              detail: "host=\(terminator.identity) path=\(path.joined(separator: ">"))")
            reply(.circuitRoute(circuitID: circuit.id, terminatorID: terminator.id, hostIdentity: terminator.identity,
                                nextHop: path.count > 1 ? path[1] : nil, grant: grant))
        }
    }

    static let repairDelayMs: UInt64 = 200
    static let repairAttempts = 5

    /// A link on a circuit's path failed. Both ends of the circuit are still held by their routers
    /// (and the tunnelers keep what is unacknowledged): find a new path between those routers,
    /// install its middle, move both ends onto it, then let the tunnelers resend.
    func repair(_ id: UInt64, attempt: Int) {
        if attempt == 1 {
            guard !rerouting.contains(id) else { return }  // both ends report the same fault
            rerouting.insert(id)
        } else {
            guard rerouting.contains(id) else { return }  // repaired meanwhile (a reattach)
        }
        // Let the reports of the failed links arrive first, so the new path avoids them.
        LoopTimer.once(on: loop, after: Self.repairDelayMs * UInt64(attempt)) { [weak self] in
            // A reattach may have repaired the circuit meanwhile.
            guard let self, self.rerouting.contains(id), let circuit = self.circuits[id],
                  let ingress = circuit.path.first, let egress = circuit.path.last else {
                self?.rerouting.remove(id)
                return
            }
            // An end router that is gone is not a path problem: its tunneler reattaches the circuit
            // elsewhere (or the circuit times out).
            guard self.routers[ingress] != nil, self.routers[egress] != nil else {
                self.rerouting.remove(id)
                return
            }
            guard let path = self.mesh.path(from: ingress, to: egress)?.routers, path.count >= 2 else {
                return self.repairFailed(circuit, attempt: attempt, why: "no path from '\(ingress)' to '\(egress)'")
            }
            var repaired = circuit
            repaired.path = path
            self.install(repaired, hop: path.count - 2, middleOnly: true) { [weak self] error in
                guard let self else { return }
                if let error { return self.repairFailed(circuit, attempt: attempt, why: "\(error)") }
                self.moveEnds(of: repaired) { [weak self] error in
                    guard let self else { return }
                    if let error { return self.repairFailed(circuit, attempt: attempt, why: "\(error)") }
                    self.rerouting.remove(id)
                    self.circuits[id]?.path = path
                    for name in [ingress, egress] { self.routers[name]?.notify(.resumeCircuit(circuitID: id)) }
                    self.logger.info("circuit rerouted", metadata: ["circuit": "\(id)", "path": "\(path.joined(separator: ">"))"])
                    self.audit.record(.circuitRerouted, identity: circuit.dialer, service: circuit.service, circuit: id,
                                      detail: "path=\(path.joined(separator: ">")) was=\(circuit.path.joined(separator: ">"))")
                }
            }
        }
    }

    /// A tunneler brought circuit `id` to router `router` after losing its own router: a new path
    /// joins `router` to the circuit's other end, whose router is moved onto it.
    func reattach(_ id: UInt64, identity: String, dialerSide: Bool, at router: String, reply: @escaping ControlPeer.Reply) {
        guard let circuit = circuits[id], (dialerSide ? circuit.dialer : circuit.host) == identity,
              let ingress = circuit.path.first, let egress = circuit.path.last else {
            return reply(.failure(message: "circuit \(id) is not '\(identity)'s or no longer exists"))
        }
        // A reattached circuit obeys the same edge-router policies as a new one.
        let snapshot = policies.snapshot
        guard snapshot.routers(for: identity, service: circuit.service).contains(router) else {
            return reply(.failure(message: "identity '\(identity)' may not use router '\(router)' for '\(circuit.service)' (edge-router policies)"))
        }
        let far = dialerSide ? egress : ingress
        guard routers[far] != nil else { return reply(.failure(message: "the circuit's other router '\(far)' is offline")) }
        // The tunneler comes here because it lost its router: that router is not on the new path,
        // even if this controller has not noticed yet that it is gone.
        let lost = dialerSide ? ingress : egress
        let avoiding: Set<String> = lost == router ? [] : [lost]
        guard let found = dialerSide ? mesh.path(from: router, to: far, avoiding: avoiding) : mesh.path(from: far, to: router, avoiding: avoiding) else {
            return reply(.failure(message: "no path from '\(router)' to '\(far)'"))
        }
        let path = found.routers
        var moved = circuit
        moved.path = path
        moved.router = path[0]
        let report = CircuitReport(id: id, service: circuit.service, dialer: circuit.dialer, host: circuit.host,
                                   dialSessionID: circuit.dialSessionID, terminatorID: circuit.terminatorID)
        rerouting.remove(id)
        let resume = { [weak self] in
            guard let self else { return }
            self.circuits[id] = moved
            for name in Set([path[0], path[path.count - 1]]) { self.routers[name]?.notify(.resumeCircuit(circuitID: id)) }
            self.audit.record(.circuitRerouted, identity: circuit.dialer, service: circuit.service, circuit: id,
                              detail: "reattached by \(identity) at \(router): path=\(path.joined(separator: ">")) was=\(circuit.path.joined(separator: ">"))")
        }
        guard path.count >= 2 else {
            reply(.reattached(report, via: nil))
            return resume()
        }
        // Every router of the new path learns the circuit before the far end sends along it:
        // the middle, then the reattaching router (by this reply), then the far end is moved.
        install(moved, hop: path.count - 2, middleOnly: true) { [weak self] error in
            guard let self else { return }
            if let error { return reply(.failure(message: "could not set up \(path.joined(separator: " → ")): \(error)")) }
            reply(.reattached(report, via: dialerSide ? path[1] : path[path.count - 2]))
            let via = dialerSide ? path[path.count - 2] : path[1]
            self.routers[far]?.request(.reroute(circuitID: id, dialerSide: dialerSide, via: via)) { [weak self] result in
                guard let self else { return }
                if case .failure(let error) = result.unwrapped {
                    // Half a path helps nobody: end the circuit everywhere so neither side waits.
                    self.logger.warning("reattach could not move the far end", metadata: ["circuit": "\(id)", "error": "\(error)"])
                    self.circuits.removeValue(forKey: id)
                    for peer in self.routers.values { peer.notify(.revoke(sessionIDs: [], circuitIDs: [id], reason: "reattach failed: \(error)")) }
                    self.audit.record(.circuitClosed, identity: circuit.dialer, service: circuit.service, circuit: id, detail: "reattach failed: \(error)")
                    return
                }
                resume()
            }
        }
    }

    /// Host end first: the dialer's resent frames must find the new path whole.
    private func moveEnds(of circuit: Circuit, completion: @escaping (Error?) -> Void) {
        let path = circuit.path
        guard let egress = routers[path[path.count - 1]], let ingress = routers[path[0]] else {
            return completion(ControlError.refused("an end router of circuit \(circuit.id) is offline"))
        }
        egress.request(.reroute(circuitID: circuit.id, dialerSide: true, via: path[path.count - 2])) { result in
            if case .failure(let error) = result.unwrapped { return completion(error) }
            ingress.request(.reroute(circuitID: circuit.id, dialerSide: false, via: path[1])) { result in
                if case .failure(let error) = result.unwrapped { return completion(error) }
                completion(nil)
            }
        }
    }

    private func repairFailed(_ circuit: Circuit, attempt: Int, why: String) {
        if attempt < Self.repairAttempts {
            logger.info("circuit repair deferred", metadata: ["circuit": "\(circuit.id)", "attempt": "\(attempt)", "why": "\(why)"])
            return repair(circuit.id, attempt: attempt + 1)
        }
        rerouting.remove(circuit.id)
        circuits.removeValue(forKey: circuit.id)
        for peer in routers.values { peer.notify(.revoke(sessionIDs: [], circuitIDs: [circuit.id], reason: "no path left: \(why)")) }
        audit.record(.circuitClosed, identity: circuit.dialer, service: circuit.service, circuit: circuit.id, detail: "unrepairable: \(why)")
    }

    /// Installs the circuit on `path[hop]`, then on the routers before it, back to the second:
    /// each router is ready before the one upstream starts sending to it. With `middleOnly`,
    /// `path[hop]` is a transit router even if it is the last one installed.
    private func install(_ circuit: Circuit, hop: Int, middleOnly: Bool = false, completion: @escaping (Error?) -> Void) {
        guard hop >= 1 else { return completion(nil) }
        let path = circuit.path
        guard let peer = routers[path[hop]] else { return completion(ControlError.refused("router '\(path[hop])' is offline")) }
        let isLast = !middleOnly && hop == path.count - 1
        peer.request(.installRoute(circuitID: circuit.id, service: circuit.service, dialer: circuit.dialer,
                                   dialSessionID: circuit.dialSessionID, previous: path[hop - 1],
                                   next: isLast ? nil : path[hop + 1], terminatorID: isLast ? circuit.terminatorID : nil,
                                   grant: isLast ? circuit.grant : "")) { [weak self] result in
            if case .failure(let error) = result.unwrapped { return completion(error) }
            self?.install(circuit, hop: hop - 1, middleOnly: middleOnly, completion: completion) ?? completion(ControlError.connectionClosed)
        }
    }

    /// Tells every router which links to hold.
    func pushLinkAssignments() {
        let assignments = mesh.assignments(online: Set(routers.keys))
        // The roster first: who may link with whom changes with the assignment.
        for (name, peer) in routers { peer.notify(.peerRoster(roster(for: name))) }
        for (name, targets) in assignments { routers[name]?.notify(.linkTo(targets)) }
    }

    func reloadLinks(_ rows: [LinkRow]) {
        mesh.setConfigured(rows)
        pushLinkAssignments()
    }
}
