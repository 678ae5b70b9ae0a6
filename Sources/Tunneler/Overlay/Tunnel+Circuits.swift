import Foundation
import GatewayKit
import Logging
import Shared

// Hosting (binds and incoming circuits) and intercepting (dials).
extension Tunnel {
    func bindHosts(on edge: EdgeLink) {
        let router = edge.router.name
        for host in config.hosts ?? [] where !(bound[router]?.contains(host.service) ?? false) {
            guard hostReady(host.service) else { continue }  // bound when its gateway is ready
            guard grants[host.service]?.canBind == true else {
                logger.error("no Bind permission: not hosting", metadata: ["service": "\(host.service)", "identity": "\(identity.name)"])
                continue
            }
            bound[router, default: []].insert(host.service)
            controller.createSession(service: host.service, type: .bind) { [weak self, weak edge] result in
                guard let self, let edge else { return }
                switch result {
                case .failure(let error):
                    self.bound[router]?.remove(host.service)
                    self.logger.error("bind session refused", metadata: ["service": "\(host.service)", "error": "\(error)"])
                case .success(let token):
                    edge.request(.bind(session: token, precedence: host.precedence, cost: host.cost)) { [weak self] result in
                        guard let self else { return }
                        if case .failure(let error) = result {
                            self.bound[router]?.remove(host.service)
                            self.logger.error("bind refused", metadata: ["service": "\(host.service)", "error": "\(error)"])
                        } else {
                            self.logger.info("hosting", metadata: ["service": "\(host.service)", "router": "\(router)"])
                        }
                    }
                }
            }
        }
    }

    private func hostAddress(for host: TunnelerConfig.Host) -> LocalAddress? {
        if let address = host.address { return address }
        let config = grants[host.service]?.configs.first { $0.type == "host.v1" }
        return config?.data["address"]?.stringValue.flatMap { try? LocalAddress(parsing: $0) }
    }

    /// A router offers circuit `circuitID`. It is taken only with the controller's grant naming
    /// this identity as the host of a service it hosts; the caller is whom the grant names.
    func incoming(circuitID: UInt64, service: String, grant: String, on edge: EdgeLink, reply: @escaping ControlPeer.Reply) {
        let granted: CircuitGrant
        do {
            granted = try CircuitGrant.verified(grant, circuit: circuitID, key: identity.sessionKey)
            guard granted.host == identity.name else { throw CircuitGrantError.notForUs("names '\(granted.host)' as the host, not '\(identity.name)'") }
            guard granted.service == service else { throw CircuitGrantError.notForUs("is for service '\(granted.service)', not '\(service)'") }
        } catch {
            refused(circuitID, reason: "offered without a valid grant: \(error)")
            return reply(.failure(message: "circuit refused: \(error)"))
        }
        let caller = granted.dialer
        guard let host = config.hosts?.first(where: { $0.service == service }), let address = hostAddress(for: host) else {
            return reply(.failure(message: "this tunneler does not host '\(service)'"))
        }
        // Our half of the handshake is computed while the service accepts the connection.
        var handshake: E2EHandshake?
        StreamConnection.connect(loop: loop, to: address) { [weak self, weak edge] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                self.logger.warning("hosted service unreachable", metadata: ["service": "\(service)", "address": "\(address)", "error": "\(error)"])
                reply(.failure(message: "service '\(service)' is unreachable at its host: \(error)"))
            case .success(let local):
                guard let edge, edge.control != nil else {
                    local.close()
                    return reply(.failure(message: "router connection lost"))
                }
                let wantsProxy = host.proxyProtocol ?? self.grants[service]?.configs.first { $0.type == "host.v1" }?.data["proxyProtocol"]?.boolValue ?? false
                let prelude = wantsProxy ? ProxyProtocol.encode(caller: caller, circuitID: circuitID) : nil
                do {
                    let endpoint = try CircuitEndpoint(id: circuitID, role: .host, service: service, grant: grant, peerIdentity: caller, local: local,
                                                       edge: edge, identity: self.identity, prelude: prelude, handshake: handshake,
                                                       logger: self.logger)
                    endpoint.onRefused = { [weak self] endpoint, reason in self?.refused(endpoint.id, reason: reason) }
                    edge.add(endpoint)
                    reply(.ok)
                    // After the answer: the router knows the circuit by the time the hello reaches it.
                    endpoint.start()
                } catch {
                    local.close()
                    reply(.failure(message: "cannot start circuit: \(error)"))
                }
            }
        }
        handshake = try? E2EHandshake(role: .host, circuitID: circuitID, grant: grant, identityKey: identity.key,
                                      certificateDER: identity.certificateDER)
    }

    /// Tells the controller (for the audit trail) that this tunneler refused a circuit.
    func refused(_ circuitID: UInt64, reason: String) {
        logger.warning("circuit refused", metadata: ["circuit": "\(circuitID)", "reason": "\(reason)"])
        controller.circuitRefused(circuitID, reason: reason)
    }

    func accepted(_ local: StreamConnection, for service: String) {
        let span = Tracing.start("circuit dial", attributes: [("portless.service", service), ("portless.identity", identity.name)])
        withDialSession(for: service) { [weak self] result in
            guard let self else { return local.close() }
            switch result {
            case .failure(let error):
                span?.end(failed: true, attributes: [("error", "\(error)")])
                TunnelMetrics.dial(service, outcome: "refused")
                self.logger.error("connection refused", metadata: ["service": "\(service)", "error": "\(error)"])
                local.close()
            case .success(let token):
                guard let edge = self.dialEdge else {
                    span?.end(failed: true, attributes: [("error", "not connected to any router")])
                    TunnelMetrics.dial(service, outcome: "refused")
                    self.logger.error("connection refused: not connected to any router", metadata: ["service": "\(service)"])
                    return local.close()
                }
                edge.dial(session: token) { [weak self] result in
                    guard let self else { return local.close() }
                    guard case .success(.dialed(let circuitID, _, let grant)) = result else {
                        span?.end(failed: true, attributes: [("error", "\(result)")])
                        TunnelMetrics.dial(service, outcome: "failed")
                        self.dialSessions.removeValue(forKey: service)
                        self.logger.error("dial failed", metadata: ["service": "\(service)", "error": "\(result)"])
                        return local.abort()
                    }
                    // The router's word counts for nothing: the controller's grant says who the host is.
                    let granted: CircuitGrant
                    do {
                        granted = try CircuitGrant.verified(grant, circuit: circuitID, key: self.identity.sessionKey)
                        guard granted.dialer == self.identity.name else { throw CircuitGrantError.notForUs("names '\(granted.dialer)' as the dialer") }
                        guard granted.service == service else { throw CircuitGrantError.notForUs("is for service '\(granted.service)', not '\(service)'") }
                    } catch {
                        span?.end(failed: true, attributes: [("portless.circuit", String(circuitID)), ("error", "\(error)")])
                        TunnelMetrics.dial(service, outcome: "failed")
                        self.refused(circuitID, reason: "the router's answer carries no valid grant: \(error)")
                        edge.channel?.send(.circuitClose, circuitID: circuitID, body: Array("refused: no valid grant".utf8))
                        return local.abort()
                    }
                    guard !local.isClosed else {
                        edge.channel?.send(.circuitClose, circuitID: circuitID, body: Array("client went away".utf8))
                        return
                    }
                    do {
                        let endpoint = try CircuitEndpoint(id: circuitID, role: .dialer, service: service, grant: grant, peerIdentity: granted.host,
                                                           local: local, edge: edge, identity: self.identity, prelude: nil, logger: self.logger)
                        endpoint.onRefused = { [weak self] endpoint, reason in self?.refused(endpoint.id, reason: reason) }
                        edge.add(endpoint)
                        endpoint.start()
                        span?.end(attributes: [("portless.circuit", String(circuitID)), ("portless.host", granted.host)])
                        TunnelMetrics.dial(service, outcome: "ok")
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
