import Foundation
import Shared

// The forwarding path, and closing circuits.
extension RouterNode {
    /// Passes a circuit frame to the other side of its circuit, unopened and uncopied.
    func forward(_ frame: FrameView, from source: CircuitCarrier) {
        let id = frame.header.circuitID
        if frame.header.type == .circuitRerouted { return }  // routers send these; tunnelers do not
        guard let circuit = circuits[id] else {
            // A tunneler is told; a neighbouring router may be ahead of a path being set up.
            if frame.header.type != .circuitClose && !source.isLink {
                source.channel.send(.circuitClose, circuitID: id, body: Array("unknown circuit".utf8))
            }
            return
        }
        // From a path the circuit no longer uses, or towards a side being rerouted: drop it;
        // the tunnelers resend what was not acknowledged.
        guard circuit.isSide(source), let target = circuit.otherSide(of: source) else { return }
        if let tampering, tampering.intercept(frame, fromDialer: source === circuit.dialerSide,
                                              dialerSide: circuit.dialerSide?.channel, hostSide: circuit.hostSide?.channel) { return }
        if source === circuit.dialerSide {
            metrics.bytesToHost.increment(by: Int64(frame.raw.count))
        } else {
            metrics.bytesToDialer.increment(by: Int64(frame.raw.count))
        }
        guard target.deliver(frame) else {
            logger.warning("circuit over its queue bound; closed", metadata: ["circuit": "\(id)", "towards": "\(target.label)"])
            return close(circuit, reason: "its sender exceeded the circuit's window at router '\(name)'")
        }
        switch frame.header.type {
        case .circuitClose:
            return remove(circuit, reason: "closed by \(source.label)")
        case .circuitEnd:
            circuits[id]?.ended.insert(ObjectIdentifier(source))
            if circuits[id]?.ended.count == 2 { return remove(circuit, reason: "completed") }
        default:
            break
        }
    }

    func close(_ circuit: RouterCircuit, reason: String) {
        let body = Array(reason.utf8)
        for side in circuit.sides { side.channel.send(.circuitClose, circuitID: circuit.id, body: body) }
        remove(circuit, reason: reason)
    }

    /// Forgets a circuit; `notify` tells the controller it ended (not for a transit entry
    /// dropped because its link failed: the circuit lives on along another path).
    func remove(_ circuit: RouterCircuit, reason: String, notify: Bool = true) {
        guard circuits.removeValue(forKey: circuit.id) != nil else { return }
        for side in circuit.sides {
            side.circuits.remove(circuit.id)
            side.dropQueue(circuit.id)
        }
        if notify { controller.notify(.circuitClosed(circuitID: circuit.id, reason: reason)) }
    }

    /// A tunneler or link went away. A tunneler's circuits end. A link's circuits survive: where
    /// this router holds an end of the circuit it detaches that side and asks the controller for
    /// a new path; where it was only a transit hop it forgets the circuit.
    func carrierLost(_ carrier: CircuitCarrier, reason: String) {
        for id in carrier.circuits {
            // A circuit already moved off this carrier (a reroute that arrived before the loss) is not its concern.
            guard var circuit = circuits[id], circuit.isSide(carrier) else { continue }
            let other = circuit.otherSide(of: carrier)
            if carrier.isLink, let other, !other.isLink {
                if circuit.dialerSide === carrier { circuit.dialerSide = nil } else { circuit.hostSide = nil }
                circuits[id] = circuit
                controller.notify(.circuitFault(circuitID: id))
                LoopTimer.once(on: loop, after: Self.rerouteTimeoutMs) { [weak self] in
                    guard let self, let stuck = self.circuits[id], stuck.dialerSide == nil || stuck.hostSide == nil else { return }
                    self.close(stuck, reason: "no new path within \(Self.rerouteTimeoutMs / 1000) s after \(reason)")
                }
            } else if carrier.isLink {
                remove(circuit, reason: reason, notify: false)
            } else {
                other?.channel.send(.circuitClose, circuitID: id, body: Array(reason.utf8))
                remove(circuit, reason: reason)
            }
        }
        carrier.circuits.removeAll()
    }

    static var rerouteTimeoutMs: UInt64 { 10_000 }

    /// The controller moved one side of a circuit onto the link to `via`.
    func reroute(_ id: UInt64, dialerSide: Bool, via: String, reply: ControlPeer.Reply) {
        guard var circuit = circuits[id] else { return reply(.failure(message: "router '\(name)' has no circuit \(id)")) }
        guard let link = linkManager.links[via] else { return reply(.failure(message: "router '\(name)' has no link to '\(via)'")) }
        let previous = dialerSide ? circuit.dialerSide : circuit.hostSide
        if previous !== link.carrier {
            previous?.circuits.remove(id)
            previous?.dropQueue(id)
        }
        if dialerSide { circuit.dialerSide = link.carrier } else { circuit.hostSide = link.carrier }
        circuits[id] = circuit
        metrics.reroutes.increment()
        link.carrier.circuits.insert(id)
        reply(.ok)
    }

    /// The path is whole again: the tunneler at this end resends what is unacknowledged.
    func resume(_ id: UInt64) {
        guard let circuit = circuits[id] else { return }
        for side in circuit.sides where !side.isLink { side.channel.send(.circuitRerouted, circuitID: id, body: []) }
    }

    func revoke(_ sessionIDs: [String], circuits circuitIDs: [UInt64], reason: String) {
        verifier.revoke(sessionIDs)
        let listed = Set(circuitIDs)
        for circuit in circuits.values where listed.contains(circuit.id) || verifier.isRevoked(circuit.dialSessionID) {
            close(circuit, reason: "revoked: \(reason)")
        }
        for terminator in terminators.values where verifier.isRevoked(terminator.sessionID) {
            terminators.removeValue(forKey: terminator.id)
            terminator.connection.terminators.remove(terminator.id)
            terminator.connection.control.notify(.revoke(sessionIDs: [terminator.sessionID], circuitIDs: [], reason: reason))
        }
        if !sessionIDs.isEmpty || !circuitIDs.isEmpty {
            logger.info("revocation applied", metadata: ["sessions": "\(sessionIDs.count)", "circuits": "\(circuitIDs.count)"])
        }
    }
}
