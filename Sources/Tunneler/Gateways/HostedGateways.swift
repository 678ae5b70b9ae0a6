import Crypto
import Foundation
import Logging
import GatewayKit
import LLMGateway
import MCPGateway
import Shared

/// The gateways this tunneler hosts, each behind its own private unix socket in a directory
/// only this user can enter. Their hosts' addresses are pointed at those sockets, with the
/// PROXY header on, so every request reaches a gateway with the caller's verified identity.
///
/// A gateway's service is hosted (bound on routers) only once the gateway is ready: an agent
/// that connects the moment the service appears gets complete lists, not whatever had arrived.
final class HostedGateways: Sendable {
    private let servers: [MCPGatewayServer]
    private let llmServers: [LLMGatewayServer]
    private let controls: [OverlayGatewayControl]
    private let waiting: Locked<Set<String>>
    private let onReady = Locked<(@Sendable () -> Void)?>(nil)
    /// Signs the MCP gateways' statements to their upstreams (the controller publishes its key).
    let assertions: AssertionSigner?

    private init(servers: [MCPGatewayServer], llmServers: [LLMGatewayServer], controls: [OverlayGatewayControl], assertions: AssertionSigner?) {
        self.servers = servers
        self.llmServers = llmServers
        self.controls = controls
        self.assertions = assertions
        self.waiting = Locked(Set(servers.map(\.gateway.service)))
        for server in servers {
            Task { [weak self] in
                await server.gateway.awaitReady()
                self?.waiting.withLock { _ = $0.remove(server.gateway.service) }
                self?.onReady.current?()
            }
        }
    }

    /// Whether `service` may be hosted now (always, unless it is a gateway still starting).
    func isReady(_ service: String) -> Bool { !waiting.withLock { $0.contains(service) } }

    /// Called (on any thread) each time a gateway becomes ready.
    func whenReady(_ body: @escaping @Sendable () -> Void) { onReady.withLock { $0 = body } }

    static func start(hosts config: inout TunnelerConfig, identity: EnrolledIdentity, logger: Logger) throws -> HostedGateways {
        var servers: [MCPGatewayServer] = []
        var llmServers: [LLMGatewayServer] = []
        var controls: [OverlayGatewayControl] = []
        guard var hosts = config.hosts, hosts.contains(where: { $0.mcpGateway != nil || $0.llmGateway != nil }) else {
            return HostedGateways(servers: [], llmServers: [], controls: [], assertions: nil)
        }
        signal(SIGPIPE, SIG_IGN)
        let directory = URL(fileURLWithPath: config.identity).appendingPathComponent("gateways").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let assertions = hosts.contains(where: { $0.mcpGateway != nil })
            ? AssertionSigner(key: try Self.assertionKey(in: config.identity), identity: identity.name) : nil
        for index in hosts.indices {
            if let llmConfig = hosts[index].llmGateway {
                let service = hosts[index].service
                let control = OverlayGatewayControl(service: service)
                var gatewayLogger = logger
                gatewayLogger[metadataKey: "gateway"] = "\(service)"
                let path = "\(directory)/llm-\(service).sock"
                let server = LLMGatewayServer(gateway: LLMGateway(service: service, config: llmConfig, control: control, stateDirectory: directory,
                                                                  logger: gatewayLogger),
                                              socketPath: path, logger: gatewayLogger)
                try Self.wait { try await server.start() }
                hosts[index].address = try LocalAddress(parsing: "unix:\(path)")
                hosts[index].proxyProtocol = true
                llmServers.append(server)
                controls.append(control)
                logger.info("LLM gateway serving", metadata: ["service": "\(service)", "providers": "\(llmConfig.providers.map(\.name))"])
                continue
            }
            guard let gatewayConfig = hosts[index].mcpGateway else { continue }
            let service = hosts[index].service
            let control = OverlayGatewayControl(service: service)
            var gatewayLogger = logger
            gatewayLogger[metadataKey: "gateway"] = "\(service)"
            let gateway = MCPGateway(service: service, config: gatewayConfig, control: control, assertions: assertions, logger: gatewayLogger)
            let path = "\(directory)/mcp-\(service).sock"
            let server = MCPGatewayServer(gateway: gateway, socketPath: path, logger: gatewayLogger)
            try Self.wait { try await server.start() }
            hosts[index].address = try LocalAddress(parsing: "unix:\(path)")
            hosts[index].proxyProtocol = true
            servers.append(server)
            controls.append(control)
            logger.info("MCP gateway serving", metadata: ["service": "\(service)", "upstreams": "\(gatewayConfig.upstreams.map(\.name))"])
        }
        config.hosts = hosts
        return HostedGateways(servers: servers, llmServers: llmServers, controls: controls, assertions: assertions)
    }

    /// The key the gateways sign upstream statements with: made once, kept beside the identity
    /// (0600), and never the identity's own key.
    private static func assertionKey(in identityDirectory: String) throws -> P256.Signing.PrivateKey {
        let path = identityDirectory + "/assertion-key.pem"
        if FileManager.default.fileExists(atPath: path) {
            do { return try P256.Signing.PrivateKey(pemRepresentation: try Files.read(path)) } catch {
                throw FileError.invalid(path: path, reason: "not a P-256 private key in PEM: \(error); delete it to have a new one made")
            }
        }
        let key = P256.Signing.PrivateKey()
        try Files.write(key.pemRepresentation, to: path, privateFile: true)
        return key
    }

    func attach(_ controller: LoopBound<ControllerClient>) {
        for control in controls { control.attach(controller) }
    }

    /// Stops the gateways and the upstream processes they run. Called after the tunneler's loop
    /// ended, so the controller is out of reach: what is still queued for it is given up.
    func stop() {
        for control in controls { control.detach() }
        for server in servers { try? Self.wait { await server.stop() } }
        for server in llmServers { try? Self.wait { await server.stop() } }
    }

    /// Runs async work to completion from synchronous start-up code (not from a task).
    private static func wait(_ work: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = Locked<Error?>(nil)
        Task {
            do { try await work() } catch { outcome.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        if let error = outcome.current { throw error }
    }
}
