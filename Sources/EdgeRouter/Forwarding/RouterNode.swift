import Foundation
import Logging
import Shared

/// The edge router: accepts tunnelers, verifies their sessions, keeps terminators and forwards
/// circuit frames between the two ends of each circuit. Loop-confined.
///
/// Invariant: routers never see plaintext. Circuit frames are end-to-end sealed by the tunnelers;
/// this type reads only their headers (circuit id) and copies bodies through unopened.
final class RouterNode {
    let name: String
    let loop: EventLoop
    let logger: Logger
    private let link: ControllerLink
    private var verifier: SessionVerifier
    private var listener: FramedListener?
    private var circuits: [UInt64: RouterCircuit] = [:]
    private var terminators: [String: RouterTerminator] = [:]

    init(identity: EnrolledIdentity, loop: EventLoop, edgeAddress: SocketAddress, logger: Logger) throws {
        name = identity.name
        self.loop = loop
        self.logger = logger
        verifier = SessionVerifier(routerName: identity.name, key: identity.sessionKey)
        let clientContext = try TLSContext(server: false, credentials: identity.tlsCredentials)
        link = ControllerLink(loop: loop, address: identity.controlAddress, context: clientContext,
                              hello: { .routerHello(edgeAddress: edgeAddress.description, circuits: []) }, logger: logger)
        let serverContext = try TLSContext(server: true, credentials: identity.tlsCredentials)
        listener = try FramedListener(loop: loop, address: edgeAddress, context: serverContext, logger: logger) { [unowned self] channel in
            channel.onReady = { [unowned self, unowned channel] peer in self.accepted(channel, peer: peer) }
            channel.onClose = { [logger] error in
                logger.info("edge connection refused", metadata: ["reason": "\(error.map { "\($0)" } ?? "closed")"])
            }
        }
        // The hello carries the live circuits, so a restarted controller learns them again.
        link.hello = { [unowned self] in
            .routerHello(edgeAddress: edgeAddress.description, circuits: self.circuits.values.map(\.report))
        }
        link.onConnected = { [unowned self] welcome in
            if case .routerWelcome(let revokedSessions) = welcome { self.revoke(revokedSessions, circuits: [], reason: "revoked") }
            // Terminators bound while the controller was away are announced again.
            for terminator in self.terminators.values {
                self.link.request(.addTerminator(id: terminator.id, service: terminator.service,
                                                 identity: terminator.connection.identity, sessionID: terminator.sessionID)) { _ in }
            }
        }
        link.onPush = { [unowned self] message in
            if case .revoke(let sessions, let circuits, let reason) = message { self.revoke(sessions, circuits: circuits, reason: reason) }
        }
        logger.info("edge listener ready", metadata: ["address": "\(edgeAddress)"])
        link.start()
    }

    private func accepted(_ channel: FramedChannel, peer: PeerIdentity) {
        guard peer.kind == .identity else {
            channel.close(error: TLSError.peerNotAuthorized("edge listener accepts identities only, not \(peer)"))
            return
        }
        let connection = EdgeConnection(control: ControlPeer(channel: channel), identity: peer.name)
        connection.control.onMessage = { [unowned self, unowned connection] message, reply in
            self.received(message, from: connection, reply: reply)
        }
        connection.control.onCircuitFrame = { [unowned self, unowned connection] frame in self.forward(frame, from: connection) }
        connection.control.onClose = { [unowned self] error in self.disconnected(connection, error: error) }
        channel.onWritable = { [unowned connection] in
            let sources = connection.blockedSources.values
            connection.blockedSources.removeAll()
            for source in sources { source.channel.resumeReading() }
        }
    }

    // MARK: control from tunnelers

    private func received(_ message: ControlMessage, from connection: EdgeConnection, reply: ControlPeer.Reply?) {
        switch message {
        case .bind(let token):
            bind(token, from: connection, reply: reply ?? { _ in })
        case .dial(let token):
            dial(token, from: connection, reply: reply ?? { _ in })
        default:
            reply?(.failure(message: "unexpected message on the edge channel"))
        }
    }

    private func bind(_ token: String, from connection: EdgeConnection, reply: @escaping ControlPeer.Reply) {
        let claims: SessionClaims
        do { claims = try verifier.verify(token, presentedBy: connection.identity, type: .bind) } catch {
            reply(.failure(message: "bind refused: \(error)"))
            return
        }
        let id = UUID().uuidString
        link.request(.addTerminator(id: id, service: claims.service, identity: connection.identity, sessionID: claims.sid)) { [weak self, weak connection] result in
            guard let self, let connection, !connection.channel.isClosed else { return }
            switch result {
            case .success:
                self.terminators[id] = RouterTerminator(id: id, service: claims.service, connection: connection, sessionID: claims.sid)
                connection.terminators.insert(id)
                self.logger.info("terminator bound", metadata: ["service": "\(claims.service)", "identity": "\(connection.identity)"])
                reply(.bound(terminatorID: id))
            case .failure(let error):
                reply(.failure(message: "bind refused: \(error)"))
            }
        }
    }

    private func dial(_ token: String, from dialer: EdgeConnection, reply: @escaping ControlPeer.Reply) {
        let claims: SessionClaims
        do { claims = try verifier.verify(token, presentedBy: dialer.identity, type: .dial) } catch {
            reply(.failure(message: "dial refused: \(error)"))
            return
        }
        link.request(.createCircuit(sessionID: claims.sid, service: claims.service, dialer: dialer.identity)) { [weak self, weak dialer] result in
            guard let self, let dialer else { return }
            guard case .success(.circuitRoute(let circuitID, let terminatorID, let hostIdentity)) = result else {
                let reason: String
                if case .failure(let error) = result { reason = "\(error)" } else { reason = "unexpected controller reply" }
                reply(.failure(message: "dial refused: \(reason)"))
                return
            }
            guard let terminator = self.terminators[terminatorID], !dialer.channel.isClosed else {
                self.link.notify(.circuitClosed(circuitID: circuitID, reason: "terminator gone"))
                reply(.failure(message: "dial refused: the hosting tunneler went away"))
                return
            }
            terminator.connection.control.request(.incomingCircuit(circuitID: circuitID, service: claims.service,
                                                                    caller: dialer.identity, terminatorID: terminatorID)) { [weak self, weak dialer] answer in
                guard let self else { return }
                guard let dialer, !dialer.channel.isClosed else {
                    self.link.notify(.circuitClosed(circuitID: circuitID, reason: "dialer went away"))
                    return
                }
                if case .failure(let error) = answer.unwrapped {
                    self.link.notify(.circuitClosed(circuitID: circuitID, reason: "host refused: \(error)"))
                    reply(.failure(message: "dial refused by the hosting tunneler: \(error)"))
                    return
                }
                let circuit = RouterCircuit(id: circuitID, service: claims.service, dialer: dialer, host: terminator.connection,
                                            dialSessionID: claims.sid, terminatorID: terminatorID)
                self.circuits[circuitID] = circuit
                dialer.circuits.insert(circuitID)
                terminator.connection.circuits.insert(circuitID)
                self.logger.debug("circuit open", metadata: ["circuit": "\(circuitID)", "service": "\(claims.service)"])
                reply(.dialed(circuitID: circuitID, hostIdentity: hostIdentity))
            }
        }
    }

    // MARK: forwarding

    private func forward(_ frame: FrameView, from source: EdgeConnection) {
        let id = frame.header.circuitID
        guard let circuit = circuits[id], let target = circuit.peer(of: source) else {
            if frame.header.type != .circuitClose {
                source.channel.send(.circuitClose, circuitID: id, body: Array("unknown circuit".utf8))
            }
            return
        }
        target.channel.forward(frame)
        switch frame.header.type {
        case .circuitClose:
            return remove(circuit, reason: "closed by \(source.identity)")
        case .circuitEnd:
            circuits[id]?.ended.insert(ObjectIdentifier(source))
            if circuits[id]?.ended.count == 2 { return remove(circuit, reason: "completed") }
        default:
            break
        }
        if target.channel.isWriteBlocked, !source.channel.isPaused {
            source.channel.pauseReading()
            target.blockedSources[ObjectIdentifier(source)] = source
        }
    }

    private func close(_ circuit: RouterCircuit, reason: String) {
        let body = Array(reason.utf8)
        circuit.dialer.channel.send(.circuitClose, circuitID: circuit.id, body: body)
        circuit.host.channel.send(.circuitClose, circuitID: circuit.id, body: body)
        remove(circuit, reason: reason)
    }

    private func remove(_ circuit: RouterCircuit, reason: String) {
        guard circuits.removeValue(forKey: circuit.id) != nil else { return }
        circuit.dialer.circuits.remove(circuit.id)
        circuit.host.circuits.remove(circuit.id)
        link.notify(.circuitClosed(circuitID: circuit.id, reason: reason))
    }

    private func disconnected(_ connection: EdgeConnection, error: Error?) {
        logger.debug("tunneler disconnected", metadata: ["identity": "\(connection.identity)", "reason": "\(error.map { "\($0)" } ?? "closed")"])
        for id in connection.circuits {
            if let circuit = circuits[id] { close(circuit, reason: "\(connection.identity) disconnected") }
        }
        for id in connection.terminators {
            terminators.removeValue(forKey: id)
            link.notify(.removeTerminator(id: id))
        }
        for source in connection.blockedSources.values { source.channel.resumeReading() }
        connection.blockedSources.removeAll()
    }

    // MARK: revocation

    private func revoke(_ sessionIDs: [String], circuits circuitIDs: [UInt64], reason: String) {
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
