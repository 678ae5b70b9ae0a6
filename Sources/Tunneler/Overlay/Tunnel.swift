import Foundation
import Logging
import Shared

/// A running tunneler: intercepts (loopback listeners → services) and hosts (services → local
/// addresses), over outbound connections only. Loop-confined.
///
/// It holds connections to up to two edge routers. Hosted services are bound on both; dials go
/// through the first. When a router connection drops, its live circuits are reattached through
/// the other one: the controller finds them a new path and both tunnelers resend what was not
/// acknowledged, so a circuit survives the loss of its own edge router.
final class Tunnel {
    static let edgeRouters = 2

    let loop: EventLoop
    let config: TunnelerConfig
    let identity: EnrolledIdentity
    let logger: Logger
    let controller: ControllerClient
    private let context: TLSContext
    /// Connected routers, and the order to prefer them in (the controller's).
    private(set) var edges: [String: EdgeLink] = [:]
    private var routerOrder: [String] = []
    private var connecting: Set<String> = []
    var grants: [String: ServiceGrant] = [:]
    private var listeners: [AnyObject] = []
    var dialSessions: [String: (token: String, expires: Date)] = [:]
    /// Services bound, per router.
    var bound: [String: Set<String>] = [:]
    /// Whether a hosted service may be bound yet (a gateway is bound once it is ready).
    var hostReady: (String) -> Bool = { _ in true }

    /// Binds what became ready since the last try.
    func bindReadyHosts() {
        for link in edges.values where link.control != nil { bindHosts(on: link) }
    }

    init(config: TunnelerConfig, identity: EnrolledIdentity, loop: EventLoop, logger: Logger) throws {
        self.loop = loop
        self.config = config
        self.identity = identity
        self.logger = logger
        context = try TLSContext(server: false, credentials: identity.tlsCredentials)
        controller = ControllerClient(loop: loop, address: identity.controlAddress, context: context, logger: logger, stateDirectory: config.identity)
        for intercept in config.intercepts ?? [] {
            listeners.append(try TCPListener(loop: loop, address: intercept.listen) { [unowned self] local in
                self.accepted(local, for: intercept.service)
            })
            logger.info("intercepting", metadata: ["service": "\(intercept.service)", "listen": "\(intercept.listen)"])
        }
        controller.onReady = { [unowned self] in
            self.refresh()
            self.publishAssertionKey()
        }
        controller.start()
    }

    /// The public key this tunneler's gateways sign upstream statements with, if it hosts any.
    var assertionKey: JSONValue?

    /// Tells the controller the key (again after each reconnection: it may have restarted empty).
    private func publishAssertionKey() {
        guard let jwk = assertionKey else { return }
        controller.publishAssertionKey(jwk) { [weak self] result in
            if case .failure(let error) = result {
                self?.logger.error("assertion key not published; upstreams cannot verify this gateway's statements", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Intercepts `service` on a unix socket (the stdio bridge's private one): no port at all.
    func interceptPrivately(_ service: String, path: String) throws {
        listeners.append(try UnixListener(loop: loop, path: path) { [unowned self] local in self.accepted(local, for: service) })
    }

    /// The first connected router in the controller's order.
    /// Sets the gauges that mirror live state; runs on the loop before each scrape.
    func updateMetrics() {
        TunnelMetrics.circuitsOpen.set(Int64(edges.values.reduce(0) { $0 + $1.circuitCount }))
        TunnelMetrics.routersConnected.set(Int64(edges.values.filter { $0.control != nil }.count))
    }

    var primaryEdge: EdgeLink? {
        routerOrder.lazy.compactMap { self.edges[$0] }.first { $0.control != nil }
    }

    /// The router a new circuit goes through: of the connected ones, the one carrying the fewest
    /// circuits (the controller's order breaks ties). Each circuit lives in one router process,
    /// so a host running one router per core spreads a tunneler's circuits over its cores with
    /// nothing shared between them.
    var dialEdge: EdgeLink? {
        routerOrder.compactMap { self.edges[$0] }.filter { $0.control != nil }.min { $0.load < $1.load }
    }

    /// Re-reads what this identity may do and (re)connects to routers.
    func refresh() {
        controller.listServices { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                self.logger.error("cannot list services", metadata: ["error": "\(error)"])
            case .success(let (grants, routers)):
                self.grants = Dictionary(uniqueKeysWithValues: grants.map { ($0.name, $0) })
                for intercept in self.config.intercepts ?? [] where self.grants[intercept.service]?.canDial != true {
                    self.logger.error("no Dial permission: connections to this intercept will be refused",
                                      metadata: ["service": "\(intercept.service)", "identity": "\(self.identity.name)"])
                }
                self.connectEdges(routers)
            }
        }
    }

    private func connectEdges(_ routers: [RouterEndpoint]) {
        routerOrder = routers.map(\.name)
        for link in edges.values { bindHosts(on: link) }
        guard !routers.isEmpty else {
            logger.error("no edge router is available to this identity (edge-router policies, or routers offline); retrying")
            LoopTimer.once(on: loop, after: 2_000) { [weak self] in self?.refresh() }
            return
        }
        for router in routers.prefix(Self.edgeRouters) where edges[router.name] == nil && !connecting.contains(router.name) {
            connect(router)
        }
    }

    private func connect(_ router: RouterEndpoint) {
        connecting.insert(router.name)
        let link = EdgeLink(router: router, logger: logger)
        link.onIncomingCircuit = { [unowned self, unowned link] circuitID, service, grant, reply in
            self.incoming(circuitID: circuitID, service: service, grant: grant, on: link, reply: reply)
        }
        link.onRevoked = { [unowned self] reason in
            self.logger.warning("a session was revoked", metadata: ["reason": "\(reason)"])
            self.dialSessions.removeAll()
            self.bound.removeAll()
            LoopTimer.once(on: self.loop, after: 2_000) { [weak self] in self?.refresh() }
        }
        link.onClose = { [unowned self] error, orphans in
            self.logger.warning("router connection lost", metadata: ["router": "\(router.name)", "error": "\(error.map { "\($0)" } ?? "closed")"])
            self.edges[router.name] = nil
            self.bound[router.name] = nil
            self.reattach(orphans)
            LoopTimer.once(on: self.loop, after: 1_000) { [weak self] in self?.refresh() }
        }
        link.connect(loop: loop, context: context) { [weak self] error in
            guard let self else { return }
            self.connecting.remove(router.name)
            if let error {
                self.logger.warning("cannot reach router", metadata: ["router": "\(router.name)", "error": "\(error)"])
                LoopTimer.once(on: self.loop, after: 1_000) { [weak self] in self?.refresh() }
                return
            }
            self.edges[router.name] = link
            self.logger.info("connected to router", metadata: ["router": "\(router.name)", "address": "\(router.edgeAddress)"])
            self.bindHosts(on: link)
        }
    }

    /// Moves circuits whose router connection dropped onto another router, or ends them.
    static let reattachAttempts = 4

    /// Brings circuits of a lost router connection over another. A refusal may be the mesh still
    /// settling (a link being set up, the controller not yet aware of the loss): it is tried
    /// again a few times, half a second apart, before the circuit ends.
    private func reattach(_ orphans: [CircuitEndpoint], attempt: Int = 1) {
        for endpoint in orphans {
            guard let link = primaryEdge ?? edges.values.first(where: { $0.control != nil }) else {
                endpoint.finish(reason: "router connection lost and no other router is connected", notifyPeer: false)
                continue
            }
            link.request(.reattach(circuitID: endpoint.id, dialerSide: endpoint.role == .dialer)) { [weak self] result in
                guard let self else { return }
                if case .failure(let error) = result {
                    guard attempt >= Self.reattachAttempts else {
                        self.logger.info("circuit not reattached yet; trying again", metadata: ["circuit": "\(endpoint.id)", "error": "\(error)"])
                        LoopTimer.once(on: self.loop, after: 500) { [weak self] in self?.reattach([endpoint], attempt: attempt + 1) }
                        return
                    }
                    self.logger.warning("circuit could not be reattached", metadata: ["circuit": "\(endpoint.id)", "error": "\(error)"])
                    return endpoint.finish(reason: "reattach failed: \(error)", notifyPeer: false)
                }
                endpoint.move(to: link)
                link.add(endpoint)
                self.logger.info("circuit reattached", metadata: ["circuit": "\(endpoint.id)", "router": "\(link.router.name)"])
            }
        }
    }
}
