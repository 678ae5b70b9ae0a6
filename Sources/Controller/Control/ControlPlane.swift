import Crypto
import Foundation
import Logging
import Shared

/// The controller's live view of the network and its control channel to every router and
/// tunneler. Loop-confined: all of it runs on the control loop's thread.
///
/// Invariant: every service session it signs is remembered until it expires, so a policy change
/// can find and revoke exactly the sessions (and circuits and terminators) it no longer allows.
final class ControlPlane {
    struct Terminator {
        let id: String; let service: String; let identity: String; let router: String; let sessionID: String
        var precedence: TerminatorPrecedence; var cost: Double
        /// Set when its tunneler could not take a circuit: it ranks as failed until then.
        var failedUntil: Date?

        func effectivePrecedence(at now: Date) -> TerminatorPrecedence {
            if let failedUntil, failedUntil > now { return .failed }
            return precedence
        }
    }
    static let failedTerminatorPenalty: TimeInterval = 30
    struct Circuit { let id: UInt64; let service: String; let dialer: String; let host: String; var router: String
                     let dialSessionID: String; let terminatorID: String; var path: [String]; var grant = "" }
    struct IssuedSession { let claims: SessionClaims }
    struct APISession { let identity: String; let expires: Date }

    let loop: EventLoop
    let policies: PolicyState
    let secrets: ControllerSecrets
    let audit: AuditLog
    let records: SessionRecords
    let pins: ToolPins
    let usage: UsageLedger
    let certificates: CertificateRegistry
    let assertionKeys: AssertionKeys
    let limits: ControllerLimits
    let logger = ControllerLog.logger
    static let sessionLifetime: TimeInterval = 3600
    /// What one gateway report may add to the audit trail.
    static let maxAuditEventsPerReport = 10_000
    static let maxAuditDetail = 8 * 1024
    static let apiSessionLifetime: TimeInterval = 3600
    static let maxAPISessionsPerIdentity = 16
    /// How long a circuit whose end router died waits for its tunneler to reattach it.
    static let reattachWindowMs: UInt64 = 10_000

    private var listener: FramedListener?
    var routers: [String: ControlPeer] = [:]
    private var routerEdgeAddresses: [String: String] = [:]
    var terminators: [String: Terminator] = [:]
    var circuits = CircuitTable()
    var sessions: [String: IssuedSession] = [:]
    var revoked: [String: Date] = [:]
    private var apiSessions: [String: APISession] = [:]
    /// Every authenticated control connection, so a revoked certificate's connections can be closed.
    var connected: [ObjectIdentifier: (peer: PeerIdentity, control: ControlPeer)] = [:]
    var nextCircuit: UInt64
    /// Controllers sharing one database allocate circuit ids in interleaved sequences.
    static let circuitIDStride: UInt64 = 16
    /// Every controller of the network, as routers and tunnelers are told (this one included).
    var controllerAddresses: [String] = []
    let mesh = Mesh()
    var rerouting: Set<UInt64> = []
    /// Tells the other controllers on the same database what changed here (nil: alone).
    var changes: StoreChanges?
    /// Serves /metrics on this loop when the operator asked for it.
    var metricsListener: MetricsListener?

    init(loop: EventLoop, policies: PolicyState, secrets: ControllerSecrets, audit: AuditLog, records: SessionRecords, pins: ToolPins,
         usage: UsageLedger, certificates: CertificateRegistry, limits: ControllerLimits = ControllerLimits(), circuitSlot: UInt64 = 0) {
        self.pins = pins
        self.assertionKeys = AssertionKeys(store: records.store)
        self.limits = limits
        self.certificates = certificates
        self.usage = usage
        self.loop = loop
        self.policies = policies
        self.secrets = secrets
        self.audit = audit
        self.records = records
        do {
            let (live, revoked) = try records.load()
            for claims in live { sessions[claims.sid] = IssuedSession(claims: claims) }
            self.revoked = revoked
        } catch {
            ControllerLog.logger.error("could not load sessions; revocation covers new sessions only", metadata: ["error": "\(error)"])
        }
        // Circuit ids stay unique across restarts (seconds since 2020 in the high bits) and
        // across controllers (each its own residue modulo the stride).
        nextCircuit = UInt64(max(0, Date().timeIntervalSince1970 - 1_577_836_800)) << 20 + circuitSlot % Self.circuitIDStride
    }

    func listen(on address: SocketAddress) throws {
        let context = try TLSContext(server: true, credentials: secrets.controlCredentials)
        listener = try FramedListener(loop: loop, address: address, context: context, logger: logger) { [unowned self] channel in
            channel.onReady = { [unowned self, unowned channel] peer in self.accepted(channel, peer: peer) }
            channel.onClose = { [logger] error in
                if let error { logger.info("control connection refused", metadata: ["reason": "\(error)"]) }
            }
        }
        logger.info("control channel listening", metadata: ["address": "\(address)"])
    }

    private func accepted(_ channel: FramedChannel, peer: PeerIdentity) {
        let snapshot = policies.snapshot
        let known = peer.kind == .router ? snapshot.routers.contains(peer.name) : snapshot.identities.contains(peer.name)
        guard peer.kind == .router || peer.kind == .identity, known else {
            logger.warning("control connection from unknown peer refused", metadata: ["peer": "\(peer)"])
            channel.close(error: TLSError.peerNotAuthorized("\(peer) is not in this network"))
            return
        }
        guard !certificates.isRevoked(peer.certificateSHA256) else {
            logger.warning("control connection with a revoked certificate refused", metadata: ["peer": "\(peer)"])
            channel.close(error: TLSError.peerNotAuthorized("the certificate of \(peer) is revoked"))
            return
        }
        let control = ControlPeer(channel: channel)
        let key = ObjectIdentifier(control)
        connected[key] = (peer, control)
        if peer.kind == .router {
            control.onMessage = { [unowned self, unowned control] message, reply in
                self.routerMessage(message, from: peer.name, peer: control, reply: reply)
            }
            control.onClose = { [unowned self] error in
                self.connected.removeValue(forKey: key)
                self.routerDisconnected(peer.name, control: control, error: error)
            }
        } else {
            control.onMessage = { [unowned self, unowned control] message, reply in
                self.clientMessage(message, from: peer.name, control: control, reply: reply)
            }
            control.onClose = { [unowned self] _ in self.connected.removeValue(forKey: key) }
        }
    }

    /// What `router` must know of its peers now.
    func roster(for router: String) -> PeerRoster {
        let live = certificates.routers
        let peers = mesh.linkPeers(of: router, among: Set(live.keys))
        return PeerRoster(revokedCertificates: certificates.revoked, linkPeers: live.filter { peers.contains($0.key) })
    }

    /// Certificates were revoked (or a router enrolled or went): connections holding a revoked
    /// certificate close — here and, by the roster pushed to them, at every router, which closes
    /// their circuits — and the sessions of `identities` are revoked.
    func certificatesChanged(identities: [String], reason: String) {
        for (key, entry) in connected where certificates.isRevoked(entry.peer.certificateSHA256) {
            connected.removeValue(forKey: key)
            entry.control.channel.close(error: TLSError.peerNotAuthorized("certificate revoked: \(reason)"))
        }
        for (name, peer) in routers { peer.notify(.peerRoster(roster(for: name))) }
        revokeSessions(of: Set(identities), reason: reason)
    }

    /// Revokes every session `identities` hold, and their circuits and terminators.
    private func revokeSessions(of identities: Set<String>, reason: String) {
        guard !identities.isEmpty else { return }
        var revokedNow: [String] = []
        for (sid, session) in sessions where identities.contains(session.claims.identity) && revoked[sid] == nil {
            revoked[sid] = session.claims.exp
            revokedNow.append(sid)
            audit.record(.sessionRevoked, identity: session.claims.identity, service: session.claims.service,
                         detail: "\(session.claims.type.rawValue) session \(sid): \(reason)")
        }
        let closing = circuits.values.filter { identities.contains($0.dialer) || identities.contains($0.host) }.map(\.id)
        terminators = terminators.filter { !identities.contains($0.value.identity) }
        records.revoked(revokedNow)
        for peer in routers.values { peer.notify(.revoke(sessionIDs: revokedNow, circuitIDs: closing, reason: reason)) }
    }

    // MARK: routers

    private func routerMessage(_ message: ControlMessage, from router: String, peer: ControlPeer, reply: ControlPeer.Reply?) {
        switch message {
        case .routerHello(let edgeAddress, let linkAddress, let live):
            routers[router]?.channel.close(error: ControlError.refused("replaced by a new connection"))
            routers[router] = peer
            routerEdgeAddresses[router] = edgeAddress
            mesh.routerOnline(router, linkAddress: linkAddress)
            for report in live where circuits[report.id] == nil {
                circuits[report.id] = Circuit(id: report.id, service: report.service, dialer: report.dialer, host: report.host,
                                              router: router, dialSessionID: report.dialSessionID, terminatorID: report.terminatorID,
                                              path: [router])
            }
            logger.info("router online", metadata: ["router": "\(router)", "edge": "\(edgeAddress)", "circuits": "\(live.count)"])
            pruneRevocations()
            reply?(.routerWelcome(revokedSessions: Array(revoked.keys), roster: roster(for: router)))
            if controllerAddresses.count > 1 { peer.notify(.controllers(addresses: controllerAddresses)) }
            pushLinkAssignments()
            // Policies may have changed while this router was away.
            enforcePolicies(reason: "policy changed while router '\(router)' was disconnected")
        case .linkState(let peerName, let up, let latencyMs):
            mesh.linkState(from: router, peer: peerName, up: up, latencyMs: latencyMs)
        case .terminatorFailed(let id, let reason):
            terminators[id]?.failedUntil = Date().addingTimeInterval(Self.failedTerminatorPenalty)
            logger.warning("terminator failed", metadata: ["terminator": "\(id)", "reason": "\(reason)"])
        case .addTerminator(let id, let service, let identity, let sessionID, let precedence, let cost):
            guard policies.snapshot.permits(identity, .bind, service), revoked[sessionID] == nil else {
                reply?(.failure(message: "identity '\(identity)' may not bind service '\(service)'"))
                return
            }
            terminators[id] = Terminator(id: id, service: service, identity: identity, router: router, sessionID: sessionID,
                                         precedence: precedence ?? .default, cost: cost ?? 0)
            logger.info("terminator added", metadata: ["service": "\(service)", "identity": "\(identity)", "router": "\(router)"])
            reply?(.ok)
        case .removeTerminator(let id):
            terminators.removeValue(forKey: id)
            reply?(.ok)
        case .createCircuit(let sessionID, let service, let dialer):
            createCircuit(sessionID: sessionID, service: service, dialer: dialer, router: router, reply: reply ?? { _ in })
        case .circuitFault(let circuitID):
            repair(circuitID, attempt: 1)
        case .reattachCircuit(let circuitID, let identity, let dialerSide):
            reattach(circuitID, identity: identity, dialerSide: dialerSide, at: router, reply: reply ?? { _ in })
        case .circuitClosed(let circuitID, let reason):
            if let circuit = circuits.removeValue(forKey: circuitID) {
                audit.record(.circuitClosed, identity: circuit.dialer, service: circuit.service, circuit: circuitID, detail: reason)
                // A circuit ended by a failure at one router ends at the others too, so no
                // tunneler waits on half a path. (Completed circuits end at each router by themselves.)
                if reason != "completed" {
                    for name in circuit.path where name != router {
                        routers[name]?.notify(.revoke(sessionIDs: [], circuitIDs: [circuitID], reason: reason))
                    }
                }
            }
        default:
            reply?(.failure(message: "unexpected message from a router"))
        }
    }

    private func routerDisconnected(_ router: String, control: ControlPeer, error: Error?) {
        guard routers[router] === control else { return }
        routers.removeValue(forKey: router)
        logger.info("router offline", metadata: ["router": "\(router)", "reason": "\(error.map { "\($0)" } ?? "closed")"])
        mesh.routerOffline(router)
        pushLinkAssignments()
        terminators = terminators.filter { $0.value.router != router }
        // Circuits that only crossed this router are repaired by the routers at their ends.
        // Circuits that end here wait for their tunneler to bring them to another router.
        for (id, circuit) in circuits where circuit.path.first == router || circuit.path.last == router {
            LoopTimer.once(on: loop, after: Self.reattachWindowMs) { [weak self] in
                guard let self, let current = self.circuits[id], let first = current.path.first, let last = current.path.last,
                      self.routers[first] == nil || self.routers[last] == nil else { return }
                self.circuits.removeValue(forKey: id)
                for peer in self.routers.values { peer.notify(.revoke(sessionIDs: [], circuitIDs: [id], reason: "its router went offline")) }
                self.audit.record(.circuitClosed, identity: circuit.dialer, service: circuit.service, circuit: id, detail: "router '\(router)' offline")
            }
        }
    }

    // MARK: tunnelers (client API)

    private func clientMessage(_ message: ControlMessage, from identity: String, control: ControlPeer, reply: ControlPeer.Reply?) {
        switch message {
        case .authenticate:
            // Expired sessions go; an identity holds at most `maxAPISessionsPerIdentity` (its oldest go first).
            let now = Date()
            apiSessions = apiSessions.filter { $0.value.expires > now }
            let held = apiSessions.filter { $0.value.identity == identity }.sorted { $0.value.expires < $1.value.expires }
            for (token, _) in held.dropLast(Self.maxAPISessionsPerIdentity - 1) { apiSessions.removeValue(forKey: token) }
            let token = randomToken()
            let expires = now.addingTimeInterval(Self.apiSessionLifetime)
            apiSessions[token] = APISession(identity: identity, expires: expires)
            reply?(.apiSession(token: token, identity: identity, expiresAt: expires))
            if controllerAddresses.count > 1 { control.notify(.controllers(addresses: controllerAddresses)) }
        case .listServices(let token):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            let snapshot = policies.snapshot
            let allowed = snapshot.routersForIdentity[identity] ?? []
            let endpoints = routerEdgeAddresses.filter { allowed.contains($0.key) && routers[$0.key] != nil }
                .map { RouterEndpoint(name: $0.key, edgeAddress: $0.value) }.sorted { $0.name < $1.name }
            reply?(.services(snapshot.grants(for: identity), routers: endpoints))
        case .createSession(let token, let service, let type):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            reply?(issueSession(identity: identity, service: service, type: type))
        case .gatewayView(let token, let service, let known):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            guard policies.snapshot.permits(identity, .bind, service) else {
                reply?(.failure(message: "identity '\(identity)' may not host '\(service)'")); return
            }
            let view = gatewayView(service: service)
            reply?(view.generation == known ? .unchanged : .gatewayViewIs(view))
        case .reportToolDefinitions(let token, let service, let hashes):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            guard policies.snapshot.permits(identity, .bind, service) else {
                reply?(.failure(message: "identity '\(identity)' may not host '\(service)'")); return
            }
            do {
                if try pins.report(service: service, hashes: hashes, reporter: identity) { changes?.announce("pins") }
                reply?(.ok)
            } catch {
                reply?(.failure(message: "could not store tool pins: \(error)"))
            }
        case .reportCatalog(let token, let service, let report, let entries, let complete):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            guard policies.snapshot.permits(identity, .bind, service) else {
                reply?(.failure(message: "identity '\(identity)' may not host '\(service)'")); return
            }
            do {
                if try pins.receive(service: service, report: report, entries: entries, complete: complete, reporter: identity) { changes?.announce("pins") }
                reply?(.ok)
            } catch let error as CatalogReportError {
                reply?(.failure(message: "catalog refused: \(error)"))
            } catch {
                reply?(.failure(message: "could not store tool pins: \(error)"))
            }
        case .auditEvents(let token, let service, let events):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            guard policies.snapshot.permits(identity, .bind, service) else {
                reply?(.failure(message: "identity '\(identity)' may not host '\(service)'")); return
            }
            let snapshot = policies.snapshot
            let accepted = events.prefix(Self.maxAuditEventsPerReport).compactMap { event -> AuditLog.Entry? in
                guard let type = AuditLog.EventType(rawValue: event.type), AuditLog.EventType.reportedByGateways.contains(type) else { return nil }
                // A gateway speaks for its own callers only, in bounded records.
                if let caller = event.identity, !snapshot.permits(caller, .dial, service) { return nil }
                return AuditLog.Entry(type: type, identity: event.identity, user: event.user.map { String($0.prefix(256)) }, service: service,
                                      circuit: event.circuit, detail: String(event.detail.prefix(Self.maxAuditDetail)))
            }
            audit.record(accepted)
            reply?(.ok)
        case .publishAssertionKey(let token, let jwk):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            guard policies.snapshot.hostsAnything(identity) else {
                reply?(.failure(message: "identity '\(identity)' hosts no service: it has no gateway statements to sign")); return
            }
            do {
                try assertionKeys.publish(jwk, for: identity)
                reply?(.ok)
            } catch {
                reply?(.failure(message: "assertion key refused: \(error)"))
            }
        case .circuitRefused(let token, let circuitID, let reason):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            let circuit = circuits[circuitID]
            // Only an end of the circuit may report on it; anyone else's report is still kept, as such.
            let party = circuit.map { $0.dialer == identity ? "dialer" : $0.host == identity ? "host" : "not a party" } ?? "unknown circuit"
            audit.record(.circuitRefused, identity: identity, service: circuit?.service, circuit: circuitID,
                         detail: "refused by \(identity) (\(party)): \(String(reason.prefix(500)))")
            logger.warning("circuit refused by a tunneler", metadata: ["circuit": "\(circuitID)", "identity": "\(identity)", "reason": "\(reason.prefix(200))"])
            reply?(.ok)
        case .llmUsage(let token, let service, let records):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            guard policies.snapshot.permits(identity, .bind, service) else {
                reply?(.failure(message: "identity '\(identity)' may not host '\(service)'")); return
            }
            // The gateway hosting this service reports its callers' usage: only for identities that
            // may dial it, and only within plausible bounds. The rest is refused (and audited).
            let snapshot = policies.snapshot
            var accepted: [LLMUsageRecord] = []
            var refused: [String] = []
            for record in records {
                if let problem = UsageLedger.problem(record) {
                    refused.append(problem)
                } else if !snapshot.permits(record.identity, .dial, service) {
                    refused.append("'\(record.identity.prefix(64))' is not a caller of '\(service)'")
                } else {
                    accepted.append(record)
                }
            }
            if !refused.isEmpty {
                logger.warning("usage records refused", metadata: ["reporter": "\(identity)", "service": "\(service)", "count": "\(refused.count)"])
                audit.record(.usageRefused, identity: identity, service: service,
                             detail: "\(refused.count) usage record(s) refused: \(Set(refused).sorted().joined(separator: "; ").prefix(500))")
            }
            do {
                try usage.add(accepted)
                reply?(.ok)
            } catch {
                reply?(.failure(message: "could not store usage: \(error)"))
            }
        case .llmSpend(let token, let service):
            guard validAPISession(token, for: identity) else { reply?(.failure(message: "API session expired; authenticate again")); return }
            guard policies.snapshot.permits(identity, .bind, service) else {
                reply?(.failure(message: "identity '\(identity)' may not host '\(service)'")); return
            }
            do { reply?(.llmSpendIs(try usage.spend(roles: policies.snapshot.allIdentityRoles))) } catch {
                reply?(.failure(message: "could not read usage: \(error)"))
            }
        default:
            reply?(.failure(message: "unexpected message from a tunneler"))
        }
    }

    /// What a gateway hosting `service` needs: its configs, its callers' attributes, its pins.
    private func gatewayView(service: String) -> GatewayView {
        let snapshot = policies.snapshot
        let configs = snapshot.services[service]?.configs.compactMap { snapshot.configs[$0] }
            .map { ConfigSpec(name: $0.name, type: $0.type, data: $0.data) } ?? []
        let callers = snapshot.callers(of: service)
        let approved = pins.approved(service: service)
        var view = GatewayView(generation: "", configs: configs, callers: callers, pins: approved,
                               signers: snapshot.signers, delegations: snapshot.delegations)
        var hasher = SHA256()
        if let data = try? Self.canonicalEncoder.encode(view) { hasher.update(data: data) }
        view.generation = Hex.encode(hasher.finalize().prefix(12))
        return view
    }

    private static let canonicalEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    private func validAPISession(_ token: String, for identity: String) -> Bool {
        guard let session = apiSessions[token] else { return false }
        if session.expires < Date() { apiSessions.removeValue(forKey: token); return false }
        return session.identity == identity
    }

    private func issueSession(identity: String, service: String, type: SessionType) -> ControlMessage {
        let snapshot = policies.snapshot
        guard snapshot.services[service] != nil else { return .failure(message: "no service named '\(service)'") }
        guard snapshot.permits(identity, type, service) else {
            return .failure(message: "identity '\(identity)' has no \(type == .dial ? "Dial" : "Bind") policy for service '\(service)'")
        }
        let routerNames = snapshot.routers(for: identity, service: service)
        guard !routerNames.isEmpty else {
            return .failure(message: "no edge router may carry '\(service)' for '\(identity)': check edge-router and service-edge-router policies")
        }
        let now = Date()
        let claims = SessionClaims(sid: UUID().uuidString, identity: identity, service: service, type: type,
                                   routers: routerNames.sorted(), iat: now, exp: now.addingTimeInterval(Self.sessionLifetime))
        do {
            let token = try SignedToken.sign(claims, type: SessionClaims.tokenType, key: secrets.signingKey)
            sessions[claims.sid] = IssuedSession(claims: claims)
            records.issued(claims)
            audit.record(.sessionIssued, identity: identity, service: service, detail: "\(type.rawValue) session \(claims.sid)")
            return .session(token: token)
        } catch {
            return .failure(message: "could not sign session: \(error)")
        }
    }

    // MARK: enforcement

    /// Revokes what the current policies no longer allow and pushes it to every router.
    func enforcePolicies(reason: String) {
        let snapshot = policies.snapshot
        let now = Date()
        sessions = sessions.filter { $0.value.claims.exp > now }
        var revokedNow: [String] = []
        for (sid, session) in sessions where revoked[sid] == nil {
            let c = session.claims
            if !snapshot.permits(c.identity, c.type, c.service) || !snapshot.identities.contains(c.identity) {
                revoked[sid] = c.exp
                revokedNow.append(sid)
                audit.record(.sessionRevoked, identity: c.identity, service: c.service, detail: "\(c.type.rawValue) session \(sid): \(reason)")
            }
        }
        var closing: [UInt64] = []
        for (id, circuit) in circuits where revoked[circuit.dialSessionID] != nil
            || !snapshot.permits(circuit.dialer, .dial, circuit.service) || !snapshot.permits(circuit.host, .bind, circuit.service) {
            closing.append(id)
        }
        for (id, terminator) in terminators where revoked[terminator.sessionID] != nil || !snapshot.permits(terminator.identity, .bind, terminator.service) {
            terminators.removeValue(forKey: id)
            if revoked[terminator.sessionID] == nil {
                revoked[terminator.sessionID] = now.addingTimeInterval(Self.sessionLifetime)
                revokedNow.append(terminator.sessionID)
            }
        }
        records.revoked(revokedNow)
        guard !revokedNow.isEmpty || !closing.isEmpty else { return }
        logger.info("revoking", metadata: ["sessions": "\(revokedNow.count)", "circuits": "\(closing.count)", "reason": "\(reason)"])
        for peer in routers.values {
            peer.notify(.revoke(sessionIDs: revokedNow, circuitIDs: closing, reason: reason))
        }
    }

    private func pruneRevocations() {
        let now = Date()
        revoked = revoked.filter { $0.value > now }
    }

    func status() -> NetworkStatus {
        NetworkStatus(
            routers: routers.keys.sorted(),
            terminators: terminators.values.map { .init(id: $0.id, service: $0.service, identity: $0.identity, router: $0.router) }
                .sorted { $0.id < $1.id },
            circuits: circuits.values.map { .init(id: $0.id, service: $0.service, dialer: $0.dialer, host: $0.host, router: $0.router, path: $0.path) }
                .sorted { $0.id < $1.id },
            links: mesh.status,
            clients: Set(connected.values.filter { $0.peer.kind == .identity }.map(\.peer.name)).sorted())
    }

    /// Sets the gauges that mirror live state; runs on the loop before each scrape.
    func updateMetrics() {
        ControllerMetrics.circuitsOpen.set(Int64(circuits.count))
        ControllerMetrics.routersOnline.set(Int64(routers.count))
        ControllerMetrics.terminators.set(Int64(terminators.count))
        ControllerMetrics.linksUp.set(Int64(mesh.status.count))
    }

    func edgeAddress(of router: String) -> String? { routers[router] != nil ? routerEdgeAddresses[router] : nil }
}
