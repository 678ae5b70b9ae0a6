import Foundation
import Logging
import Shared

/// The edge router: accepts tunnelers, verifies their sessions, keeps terminators, links to other
/// routers and forwards circuit frames along each circuit's path. Loop-confined.
///
/// Invariant: routers never see plaintext. Circuit frames are end-to-end sealed by the tunnelers;
/// this type reads only their headers (circuit id) and passes them on unopened.
public final class RouterNode {
    let name: String
    let loop: EventLoop
    let logger: Logger
    let controller: ControllerLinks
    let linkManager: LinkManager
    var verifier: SessionVerifier
    private var listener: FramedListener?
    var circuits: [UInt64: RouterCircuit] = [:]
    var terminators: [String: RouterTerminator] = [:]
    private var edgeConnections: [ObjectIdentifier: EdgeConnection] = [:]
    let metrics = RouterMetrics()
    /// nil in every router but the test-only hostile one.
    let tampering: RouterTampering?
    /// What the controller says of peers; kept in the state directory so a restart knows it too.
    private(set) var roster: PeerRoster?
    private let rosterFile: String?

    public init(identity: EnrolledIdentity, loop: EventLoop, edgeAddress: SocketAddress, linkAddress: SocketAddress?, logger: Logger,
                stateDirectory: String? = nil, tampering: RouterTampering? = nil) throws {
        self.tampering = tampering
        rosterFile = stateDirectory.map { $0 + "/roster.json" }
        roster = rosterFile.flatMap { try? Files.readJSON(PeerRoster.self, from: $0) }
        name = identity.name
        self.loop = loop
        self.logger = logger
        verifier = SessionVerifier(routerName: identity.name, key: identity.sessionKey)
        let clientContext = try TLSContext(server: false, credentials: identity.tlsCredentials)
        let serverContext = try TLSContext(server: true, credentials: identity.tlsCredentials)
        controller = ControllerLinks(loop: loop, addresses: [identity.controlAddress], context: clientContext,
                                     hello: { .routerHello(edgeAddress: edgeAddress.description, linkAddress: nil, circuits: []) }, logger: logger,
                                     stateDirectory: stateDirectory)
        linkManager = try LinkManager(loop: loop, listenAddress: linkAddress, serverContext: serverContext,
                                      clientContext: clientContext, logger: logger)
        listener = try FramedListener(loop: loop, address: edgeAddress, context: serverContext, logger: logger) { [unowned self] channel in
            channel.onReady = { [unowned self, unowned channel] peer in self.accepted(channel, peer: peer) }
            channel.onClose = { [logger] error in
                logger.info("edge connection refused", metadata: ["reason": "\(error.map { "\($0)" } ?? "closed")"])
            }
        }
        let advertisedLink = linkManager.listenAddress?.description
        // The hello carries the live circuits, so a restarted controller learns them again.
        controller.hello = { [unowned self] in
            .routerHello(edgeAddress: edgeAddress.description, linkAddress: advertisedLink, circuits: self.circuits.values.map(\.report))
        }
        linkManager.mayLink = { [unowned self] peer in
            guard let roster = self.roster else { return false }
            return roster.linkPeers[peer.name] == peer.certificateSHA256 && !roster.revokedCertificates.contains(peer.certificateSHA256)
        }
        controller.onConnected = { [unowned self] controllerLink, welcome in
            if case .routerWelcome(let revokedSessions, let roster) = welcome {
                self.revoke(revokedSessions, circuits: [], reason: "revoked")
                self.apply(roster)
            }
            // Terminators bound and links made while this controller was away are announced to it again.
            for terminator in self.terminators.values {
                controllerLink.request(.addTerminator(id: terminator.id, service: terminator.service,
                                                      identity: terminator.connection.identity, sessionID: terminator.sessionID,
                                                      precedence: terminator.precedence, cost: terminator.cost)) { _ in }
            }
            for link in self.linkManager.links.values {
                controllerLink.notify(.linkState(peer: link.peer, up: true, latencyMs: link.latencyMs))
            }
        }
        controller.onPush = { [unowned self] message, reply in self.pushed(message, reply: reply) }
        linkManager.onLinkUp = { [unowned self] link in
            link.control.onCircuitFrame = { [unowned self, unowned link] frame in self.forward(frame, from: link.carrier) }
            self.reportLink(link, up: true)
        }
        linkManager.onLinkDown = { [unowned self] link, error in
            // Report the link first: the controller must not route the repair over it.
            self.reportLink(link, up: false)
            self.carrierLost(link.carrier, reason: "link to router '\(link.peer)' lost")
        }
        linkManager.onLatency = { [unowned self] link in self.reportLink(link, up: true) }
        logger.info("edge listener ready", metadata: ["address": "\(edgeAddress)"])
        controller.start()
    }

    /// Sets the gauges that mirror live state; runs on the loop before each scrape.
    public func updateMetrics() {
        metrics.circuitsOpen.set(Int64(circuits.count))
        metrics.terminators.set(Int64(terminators.count))
        metrics.edgeConnections.set(Int64(edgeConnections.count))
        let live = linkManager.links
        for (peer, link) in live { metrics.link(peer, up: true, rttMs: link.latencyMs) }
        for peer in metrics.knownLinks where live[peer] == nil { metrics.link(peer, up: false, rttMs: nil) }
    }

    private func reportLink(_ link: RouterLink, up: Bool) {
        controller.notify(.linkState(peer: link.peer, up: up, latencyMs: link.latencyMs))
    }

    /// Messages the controller pushes: revocations, link assignments, routes to install.
    private func pushed(_ message: ControlMessage, reply: ControlPeer.Reply?) {
        switch message {
        case .revoke(let sessions, let circuits, let reason):
            revoke(sessions, circuits: circuits, reason: reason)
        case .peerRoster(let roster):
            apply(roster)
        case .linkTo(let targets):
            linkManager.assign(targets)
        case .reroute(let circuitID, let dialerSide, let via):
            reroute(circuitID, dialerSide: dialerSide, via: via, reply: reply ?? { _ in })
        case .resumeCircuit(let circuitID):
            resume(circuitID)
        case .controllers(let addresses):
            controller.update(addresses)
        case .installRoute(let circuitID, let service, let dialer, let dialSessionID, let previous, let next, let terminatorID, let grant):
            installRoute(circuitID: circuitID, service: service, dialer: dialer, dialSessionID: dialSessionID,
                         previous: previous, next: next, terminatorID: terminatorID, grant: grant, reply: reply ?? { _ in })
        default:
            reply?(.failure(message: "unexpected message from the controller"))
        }
    }

    /// The controller's word on peers: revoked certificates are refused from now on and their
    /// connections close (and with them their circuits); links only stay with current peers.
    func apply(_ roster: PeerRoster) {
        self.roster = roster
        if let rosterFile { try? Files.writeJSON(roster, to: rosterFile) }
        let revoked = Set(roster.revokedCertificates)
        for connection in edgeConnections.values where revoked.contains(connection.certificate) {
            logger.warning("closing a connection whose certificate was revoked", metadata: ["identity": "\(connection.identity)"])
            connection.channel.close(error: TLSError.peerNotAuthorized("certificate revoked"))
        }
        linkManager.dropLinks { roster.linkPeers[$0.peer] != $0.certificate || revoked.contains($0.certificate) }
    }

    private func accepted(_ channel: FramedChannel, peer: PeerIdentity) {
        guard peer.kind == .identity else {
            channel.close(error: TLSError.peerNotAuthorized("edge listener accepts identities only, not \(peer)"))
            return
        }
        guard roster?.revokedCertificates.contains(peer.certificateSHA256) != true else {
            logger.warning("edge connection with a revoked certificate refused", metadata: ["identity": "\(peer.name)"])
            channel.close(error: TLSError.peerNotAuthorized("the certificate of \(peer) is revoked"))
            return
        }
        let connection = EdgeConnection(control: ControlPeer(channel: channel), identity: peer.name, certificate: peer.certificateSHA256)
        edgeConnections[ObjectIdentifier(connection)] = connection
        connection.control.onMessage = { [unowned self, unowned connection] message, reply in
            self.received(message, from: connection, reply: reply)
        }
        connection.control.onCircuitFrame = { [unowned self, unowned connection] frame in self.forward(frame, from: connection.carrier) }
        connection.control.onClose = { [unowned self] error in self.disconnected(connection, error: error) }
    }

    private func received(_ message: ControlMessage, from connection: EdgeConnection, reply: ControlPeer.Reply?) {
        switch message {
        case .bind(let token, let precedence, let cost):
            bind(token, precedence: precedence, cost: cost, from: connection, reply: reply ?? { _ in })
        case .dial(let token):
            dial(token, from: connection, reply: reply ?? { _ in })
        case .reattach(let circuitID, let dialerSide):
            reattach(circuitID, dialerSide: dialerSide, from: connection, reply: reply ?? { _ in })
        default:
            reply?(.failure(message: "unexpected message on the edge channel"))
        }
    }

    private func disconnected(_ connection: EdgeConnection, error: Error?) {
        edgeConnections.removeValue(forKey: ObjectIdentifier(connection))
        logger.debug("tunneler disconnected", metadata: ["identity": "\(connection.identity)", "reason": "\(error.map { "\($0)" } ?? "closed")"])
        carrierLost(connection.carrier, reason: "\(connection.identity) disconnected")
        for id in connection.terminators {
            terminators.removeValue(forKey: id)
            controller.notify(.removeTerminator(id: id))
        }
    }
}
