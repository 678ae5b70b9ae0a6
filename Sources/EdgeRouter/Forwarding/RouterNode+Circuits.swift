import Foundation
import Shared

// Binding, dialing and installing circuits.
extension RouterNode {
    func bind(_ token: String, precedence: TerminatorPrecedence?, cost: Double?, from connection: EdgeConnection,
              reply: @escaping ControlPeer.Reply) {
        let claims: SessionClaims
        do { claims = try verifier.verify(token, presentedBy: connection.identity, type: .bind) } catch {
            return reply(.failure(message: "bind refused: \(error)"))
        }
        let id = UUID().uuidString
        controller.requestAndTellAll(.addTerminator(id: id, service: claims.service, identity: connection.identity, sessionID: claims.sid,
                                          precedence: precedence, cost: cost)) { [weak self, weak connection] result in
            guard let self, let connection, !connection.channel.isClosed else { return }
            switch result {
            case .success:
                self.terminators[id] = RouterTerminator(id: id, service: claims.service, connection: connection, sessionID: claims.sid,
                                                        precedence: precedence, cost: cost)
                connection.terminators.insert(id)
                self.logger.info("terminator bound", metadata: ["service": "\(claims.service)", "identity": "\(connection.identity)"])
                reply(.bound(terminatorID: id))
            case .failure(let error):
                reply(.failure(message: "bind refused: \(error)"))
            }
        }
    }

    /// A tunneler dials: the controller picks the terminator and path and installs the routes
    /// downstream of this router; this router joins the dialer to the first hop. A local
    /// terminator whose tunneler refuses is reported failed and the dial tried again once (the
    /// controller then prefers another terminator).
    func dial(_ token: String, from dialer: EdgeConnection, retry: Bool = true, reply answer: @escaping ControlPeer.Reply) {
        // Counted once per dial: the retry answers through this same reply.
        let reply: ControlPeer.Reply = !retry ? answer : { [metrics] message in
            if case .failure = message { metrics.dialsFailed.increment() }
            answer(message)
        }
        let claims: SessionClaims
        do { claims = try verifier.verify(token, presentedBy: dialer.identity, type: .dial) } catch {
            return reply(.failure(message: "dial refused: \(error)"))
        }
        controller.request(.createCircuit(sessionID: claims.sid, service: claims.service, dialer: dialer.identity)) { [weak self, weak dialer] result in
            guard let self, let dialer else { return }
            guard case .success(.circuitRoute(let circuitID, let terminatorID, let hostIdentity, let nextHop, let grant)) = result else {
                let reason: String
                if case .failure(let error) = result { reason = "\(error)" } else { reason = "unexpected controller reply" }
                return reply(.failure(message: "dial refused: \(reason)"))
            }
            let route = { (hostSide: CircuitCarrier) in
                guard !dialer.channel.isClosed else {
                    hostSide.channel.send(.circuitClose, circuitID: circuitID, body: Array("dialer went away".utf8))
                    self.controller.notify(.circuitClosed(circuitID: circuitID, reason: "dialer went away"))
                    return
                }
                self.add(RouterCircuit(id: circuitID, service: claims.service, dialer: dialer.identity, host: hostIdentity,
                                       dialSessionID: claims.sid, terminatorID: terminatorID,
                                       dialerSide: dialer.carrier, hostSide: hostSide))
                let answer = ControlMessage.dialed(circuitID: circuitID, hostIdentity: hostIdentity, grant: grant)
                reply(self.tampering?.dialed(answer) ?? answer)
            }
            if let nextHop {
                guard let link = self.linkManager.links[nextHop] else {
                    self.controller.notify(.circuitClosed(circuitID: circuitID, reason: "no link to \(nextHop)"))
                    return reply(.failure(message: "dial refused: the link to router '\(nextHop)' is down"))
                }
                route(link.carrier)
            } else {
                self.offer(circuitID: circuitID, service: claims.service, caller: dialer.identity, terminatorID: terminatorID, grant: grant) { result in
                    switch result {
                    case .success(let host):
                        route(host)
                    case .failure(let error):
                        guard retry else { return reply(.failure(message: "dial refused: \(error)")) }
                        self.dial(token, from: dialer, retry: false, reply: reply)
                    }
                }
            }
        }
    }

    /// A tunneler that lost its own router brings a circuit here. The controller checks the
    /// tunneler is that circuit's end, repairs the path, and names this router's neighbour on it.
    func reattach(_ circuitID: UInt64, dialerSide: Bool, from connection: EdgeConnection, reply: @escaping ControlPeer.Reply) {
        controller.requestFromAny(.reattachCircuit(circuitID: circuitID, identity: connection.identity, dialerSide: dialerSide)) { [weak self, weak connection] result in
            guard let self, let connection, !connection.channel.isClosed else { return }
            guard case .success(.reattached(let report, let via)) = result else {
                let reason: String
                if case .failure(let error) = result { reason = "\(error)" } else { reason = "unexpected controller reply" }
                return reply(.failure(message: "reattach refused: \(reason)"))
            }
            let neighbour: CircuitCarrier?
            if let via {
                guard let link = self.linkManager.links[via] else { return reply(.failure(message: "reattach refused: no link to '\(via)'")) }
                neighbour = link.carrier
            } else {
                neighbour = nil
            }
            var circuit = self.circuits[circuitID] ?? RouterCircuit(
                id: circuitID, service: report.service, dialer: report.dialer, host: report.host, dialSessionID: report.dialSessionID,
                terminatorID: report.terminatorID, dialerSide: nil, hostSide: nil)
            let replaced = circuit.sides
            if dialerSide {
                circuit.dialerSide = connection.carrier
                if let neighbour { circuit.hostSide = neighbour }
            } else {
                circuit.hostSide = connection.carrier
                if let neighbour { circuit.dialerSide = neighbour }
            }
            for old in replaced where !circuit.isSide(old) { old.circuits.remove(circuitID) }
            self.circuits[circuitID] = circuit
            for side in circuit.sides { side.circuits.insert(circuitID) }
            reply(.ok)
        }
    }

    /// The controller asks this router to carry a circuit from router `previous` onwards.
    func installRoute(circuitID: UInt64, service: String, dialer: String, dialSessionID: String,
                      previous: String, next: String?, terminatorID: String?, grant: String, reply answer: @escaping ControlPeer.Reply) {
        let reply: ControlPeer.Reply = { [metrics] message in
            if case .failure = message { metrics.routesFailed.increment() }
            answer(message)
        }
        guard let inbound = linkManager.links[previous] else {
            return reply(.failure(message: "router '\(name)' has no link to '\(previous)'"))
        }
        let install = { (hostSide: CircuitCarrier, host: String) in
            self.add(RouterCircuit(id: circuitID, service: service, dialer: dialer, host: host, dialSessionID: dialSessionID,
                                   terminatorID: terminatorID ?? "", dialerSide: inbound.carrier, hostSide: hostSide))
            reply(.ok)
        }
        if let next {
            guard let outbound = linkManager.links[next] else {
                return reply(.failure(message: "router '\(name)' has no link to '\(next)'"))
            }
            install(outbound.carrier, "")
        } else if let terminatorID {
            offer(circuitID: circuitID, service: service, caller: dialer, terminatorID: terminatorID, grant: grant) { result in
                switch result {
                case .success(let host): install(host, self.terminators[terminatorID]?.connection.identity ?? "")
                case .failure(let error): reply(.failure(message: "\(error)"))
                }
            }
        } else {
            reply(.failure(message: "route has neither a next router nor a terminator"))
        }
    }

    /// Hands a circuit to the tunneler behind a local terminator.
    private func offer(circuitID: UInt64, service: String, caller: String, terminatorID: String, grant: String,
                       completion: @escaping (Result<CircuitCarrier, Error>) -> Void) {
        guard let terminator = terminators[terminatorID], !terminator.connection.channel.isClosed else {
            controller.notify(.circuitClosed(circuitID: circuitID, reason: "terminator gone"))
            return completion(.failure(ControlError.refused("the hosting tunneler went away")))
        }
        terminator.connection.control.request(.incomingCircuit(circuitID: circuitID, service: service, caller: caller,
                                                               terminatorID: terminatorID, grant: grant)) { [weak self] answer in
            if case .failure(let error) = answer.unwrapped {
                self?.controller.notify(.terminatorFailed(id: terminatorID, reason: "\(error)"))
                self?.controller.notify(.circuitClosed(circuitID: circuitID, reason: "host refused: \(error)"))
                return completion(.failure(ControlError.refused("the hosting tunneler refused: \(error)")))
            }
            completion(.success(terminator.connection.carrier))
        }
    }

    private func add(_ circuit: RouterCircuit) {
        metrics.circuitsOpened.increment()
        circuits[circuit.id] = circuit
        for side in circuit.sides { side.circuits.insert(circuit.id) }
        logger.debug("circuit open", metadata: ["circuit": "\(circuit.id)", "service": "\(circuit.service)"])
    }
}
