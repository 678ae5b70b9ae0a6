import Foundation
import Logging
import Shared

/// A running tunneler: intercepts (loopback listeners → services) and hosts (services → local
/// addresses), over outbound connections only. Loop-confined.
final class Tunnel {
    private let loop: EventLoop
    private let config: TunnelerConfig
    private let identity: EnrolledIdentity
    private let context: TLSContext
    private let logger: Logger
    private let controller: ControllerClient
    private var edge: EdgeLink?
    private var connectingEdge = false
    private var grants: [String: ServiceGrant] = [:]
    private var listeners: [TCPListener] = []
    private var dialSessions: [String: (token: String, expires: Date)] = [:]
    private var boundServices: Set<String> = []

    init(config: TunnelerConfig, identity: EnrolledIdentity, loop: EventLoop, logger: Logger) throws {
        self.loop = loop
        self.config = config
        self.identity = identity
        self.logger = logger
        context = try TLSContext(server: false, credentials: identity.tlsCredentials)
        controller = ControllerClient(loop: loop, address: identity.controlAddress, context: context, logger: logger)
        for intercept in config.intercepts ?? [] {
            listeners.append(try TCPListener(loop: loop, address: intercept.listen) { [unowned self] local in
                self.accepted(local, for: intercept.service)
            })
            logger.info("intercepting", metadata: ["service": "\(intercept.service)", "listen": "\(intercept.listen)"])
        }
        controller.onReady = { [unowned self] in self.refresh() }
        controller.start()
    }

    /// Re-reads what this identity may do and (re)connects to a router.
    private func refresh() {
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
                self.connectEdge(routers)
            }
        }
    }

    private func connectEdge(_ routers: [RouterEndpoint]) {
        if let edge, edge.control != nil { return bindHosts() }
        guard !connectingEdge else { return }
        guard let router = routers.first else {
            logger.error("no edge router is available to this identity (edge-router policies, or routers offline); retrying")
            LoopTimer.once(on: loop, after: 2_000) { [weak self] in self?.refresh() }
            return
        }
        connectingEdge = true
        let link = EdgeLink(router: router, logger: logger)
        link.onIncomingCircuit = { [unowned self] circuitID, service, caller, reply in
            self.incoming(circuitID: circuitID, service: service, caller: caller, reply: reply)
        }
        link.onRevoked = { [unowned self] reason in
            self.logger.warning("a session was revoked", metadata: ["reason": "\(reason)"])
            self.dialSessions.removeAll()
            self.boundServices.removeAll()
            LoopTimer.once(on: self.loop, after: 2_000) { [weak self] in self?.refresh() }
        }
        link.onClose = { [unowned self] error in
            self.logger.warning("router connection lost", metadata: ["router": "\(router.name)", "error": "\(error.map { "\($0)" } ?? "closed")"])
            self.edge = nil
            self.boundServices.removeAll()
            LoopTimer.once(on: self.loop, after: 1_000) { [weak self] in self?.refresh() }
        }
        link.connect(loop: loop, context: context) { [weak self] error in
            guard let self else { return }
            self.connectingEdge = false
            if let error {
                self.logger.warning("cannot reach router", metadata: ["router": "\(router.name)", "error": "\(error)"])
                LoopTimer.once(on: self.loop, after: 1_000) { [weak self] in self?.refresh() }
                return
            }
            self.edge = link
            self.logger.info("connected to router", metadata: ["router": "\(router.name)", "address": "\(router.edgeAddress)"])
            self.bindHosts()
        }
    }

    // MARK: hosting

    private func bindHosts() {
        for host in config.hosts ?? [] where !boundServices.contains(host.service) {
            guard grants[host.service]?.canBind == true else {
                logger.error("no Bind permission: not hosting", metadata: ["service": "\(host.service)", "identity": "\(identity.name)"])
                continue
            }
            boundServices.insert(host.service)
            controller.createSession(service: host.service, type: .bind) { [weak self] result in
                guard let self, let edge = self.edge else { return }
                switch result {
                case .failure(let error):
                    self.boundServices.remove(host.service)
                    self.logger.error("bind session refused", metadata: ["service": "\(host.service)", "error": "\(error)"])
                case .success(let token):
                    edge.request(.bind(session: token)) { [weak self] result in
                        guard let self else { return }
                        if case .failure(let error) = result {
                            self.boundServices.remove(host.service)
                            self.logger.error("bind refused", metadata: ["service": "\(host.service)", "error": "\(error)"])
                        } else {
                            self.logger.info("hosting", metadata: ["service": "\(host.service)", "router": "\(edge.router.name)"])
                        }
                    }
                }
            }
        }
    }

    private func hostAddress(for host: TunnelerConfig.Host) -> SocketAddress? {
        if let address = host.address { return address }
        let config = grants[host.service]?.configs.first { $0.type == "host.v1" }
        return config?.data["address"]?.stringValue.flatMap { try? SocketAddress(parsing: $0) }
    }

    private func incoming(circuitID: UInt64, service: String, caller: String, reply: @escaping ControlPeer.Reply) {
        guard let host = config.hosts?.first(where: { $0.service == service }), let address = hostAddress(for: host) else {
            return reply(.failure(message: "this tunneler does not host '\(service)'"))
        }
        TCPConnection.connect(loop: loop, to: address) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                self.logger.warning("hosted service unreachable", metadata: ["service": "\(service)", "address": "\(address)", "error": "\(error)"])
                reply(.failure(message: "service '\(service)' is unreachable at its host: \(error)"))
            case .success(let local):
                guard let edge = self.edge else {
                    local.close()
                    return reply(.failure(message: "router connection lost"))
                }
                let wantsProxy = host.proxyProtocol ?? self.grants[service]?.configs.first { $0.type == "host.v1" }?.data["proxyProtocol"]?.boolValue ?? false
                let prelude = wantsProxy ? ProxyProtocolHeader.encode(caller: caller, circuitID: circuitID) : nil
                do {
                    let endpoint = try CircuitEndpoint(id: circuitID, role: .host, service: service, peerIdentity: caller, local: local,
                                                       edge: edge, identity: self.identity, prelude: prelude, logger: self.logger)
                    edge.add(endpoint)
                    reply(.ok)
                } catch {
                    local.close()
                    reply(.failure(message: "cannot start circuit: \(error)"))
                }
            }
        }
    }

    // MARK: intercepting

    private func accepted(_ local: TCPConnection, for service: String) {
        withDialSession(for: service) { [weak self] result in
            guard let self else { return local.close() }
            switch result {
            case .failure(let error):
                self.logger.error("connection refused", metadata: ["service": "\(service)", "error": "\(error)"])
                local.close()
            case .success(let token):
                guard let edge = self.edge else {
                    self.logger.error("connection refused: not connected to any router", metadata: ["service": "\(service)"])
                    return local.close()
                }
                edge.request(.dial(session: token)) { [weak self] result in
                    guard let self else { return local.close() }
                    guard case .success(.dialed(let circuitID, let hostIdentity)) = result else {
                        self.dialSessions.removeValue(forKey: service)
                        self.logger.error("dial failed", metadata: ["service": "\(service)", "error": "\(result)"])
                        return local.close()
                    }
                    guard !local.isClosed else {
                        edge.channel?.send(.circuitClose, circuitID: circuitID, body: Array("client went away".utf8))
                        return
                    }
                    do {
                        let endpoint = try CircuitEndpoint(id: circuitID, role: .dialer, service: service, peerIdentity: hostIdentity,
                                                           local: local, edge: edge, identity: self.identity, prelude: nil, logger: self.logger)
                        edge.add(endpoint)
                    } catch {
                        self.logger.error("cannot start circuit", metadata: ["error": "\(error)"])
                        local.close()
                    }
                }
            }
        }
    }

    private func withDialSession(for service: String, _ completion: @escaping (Result<String, Error>) -> Void) {
        if let cached = dialSessions[service], cached.expires.timeIntervalSinceNow > 60 {
            return completion(.success(cached.token))
        }
        controller.createSession(service: service, type: .dial) { [weak self] result in
            if case .success(let token) = result, let claims = try? SignedToken.unverifiedClaims(token, as: SessionClaims.self) {
                self?.dialSessions[service] = (token, claims.exp)
            }
            completion(result)
        }
    }
}
