import Foundation
import Shared

// The forwarding path, and closing circuits.
extension RouterNode {
    /// Passes a circuit frame to the other side of its circuit, unopened and uncopied.
    func forward(_ frame: FrameView, from source: CircuitCarrier) {
        let id = frame.header.circuitID
        guard let circuit = circuits[id], let target = circuit.otherSide(of: source) else {
            if frame.header.type != .circuitClose {
                source.channel.send(.circuitClose, circuitID: id, body: Array("unknown circuit".utf8))
            }
            return
        }
        target.channel.forward(frame)
        switch frame.header.type {
        case .circuitClose:
            return remove(circuit, reason: "closed by \(source.label)")
        case .circuitEnd:
            circuits[id]?.ended.insert(ObjectIdentifier(source))
            if circuits[id]?.ended.count == 2 { return remove(circuit, reason: "completed") }
        default:
            break
        }
        if target.channel.isWriteBlocked { target.block(source) }
    }

    func close(_ circuit: RouterCircuit, reason: String) {
        let body = Array(reason.utf8)
        circuit.dialerSide.channel.send(.circuitClose, circuitID: circuit.id, body: body)
        circuit.hostSide.channel.send(.circuitClose, circuitID: circuit.id, body: body)
        remove(circuit, reason: reason)
    }

    func remove(_ circuit: RouterCircuit, reason: String) {
        guard circuits.removeValue(forKey: circuit.id) != nil else { return }
        circuit.dialerSide.circuits.remove(circuit.id)
        circuit.hostSide.circuits.remove(circuit.id)
        controller.notify(.circuitClosed(circuitID: circuit.id, reason: reason))
    }

    /// A tunneler or link went away: its circuits end, and the other side of each is told.
    func carrierLost(_ carrier: CircuitCarrier, reason: String) {
        for id in carrier.circuits {
            guard let circuit = circuits[id] else { continue }
            circuit.otherSide(of: carrier)?.channel.send(.circuitClose, circuitID: id, body: Array(reason.utf8))
            remove(circuit, reason: reason)
        }
        carrier.resumeBlockedSources()
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
