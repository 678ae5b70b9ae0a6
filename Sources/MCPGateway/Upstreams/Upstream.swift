import AsyncHTTPClient
import Foundation
import Logging
import GatewayKit
import Shared

/// One upstream MCP server under supervision: connects (starting the process for stdio),
/// negotiates the newest protocol version both sides speak, lists everything it offers (all
/// pages), follows its list-change notifications, and reconnects with backoff when it goes away.
actor Upstream {
    enum Status: Sendable, Equatable {
        case starting
        case up(protocolVersion: String)
        case down(reason: String)

        var text: String {
            switch self {
            case .starting: return "starting"
            case .up(let version): return "up (\(version))"
            case .down(let reason): return "down: \(reason)"
            }
        }
    }

    /// What the server offers, as it sent it.
    struct Offer: Sendable {
        var tools: [JSONValue] = []
        var resources: [JSONValue] = []
        var templates: [JSONValue] = []
        var prompts: [JSONValue] = []
    }

    static let newestHandshakeVersion = "2025-11-25"
    static let modernVersion = "2026-07-28"
    private static let maxPages = 1_000
    /// How long a starting process may take to answer its first handshake (under the gateway's `startupLimit`).
    static let firstHandshakeLimit: Duration = .seconds(12)
    /// How long a call waits for the server to come back after it forgot our session.
    private static let reconnectWait: Duration = .seconds(5)
    /// What the gateway declares to handshake-era servers: it relays these requests to the
    /// calling agent (and refuses them for agents that did not declare them).
    static let relayedCapabilities: JSONValue = .object([
        "sampling": .object([:]), "elicitation": .object(["form": .object([:]), "url": .object([:])]),
        "roots": .object(["listChanged": .bool(false)]),
    ])

    nonisolated let config: UpstreamConfig
    private let httpClient: HTTPClient
    private let logger: Logger
    private let onChange: @Sendable () -> Void
    private let onNotification: @Sendable (_ upstream: String, _ method: String, _ params: JSONValue?) -> Void
    private(set) var status: Status = .starting
    private(set) var offer = Offer()
    /// False until the first connection attempt has listed the server's offer, or failed.
    private(set) var settled = false
    private var client: RPCClient?
    private(set) var capabilities: JSONValue = .object([:])
    private var generation = 0
    private var backoff: Duration = .milliseconds(250)
    private var stopped = false
    private var refreshing = false
    private var refreshAgain = false
    private var listenTask: Task<Void, Never>?
    private var upWaiters: [CheckedContinuation<Void, Never>] = []

    init(config: UpstreamConfig, httpClient: HTTPClient, logger: Logger, onChange: @escaping @Sendable () -> Void,
         onNotification: @escaping @Sendable (String, String, JSONValue?) -> Void) {
        self.config = config
        self.httpClient = httpClient
        self.logger = logger
        self.onChange = onChange
        self.onNotification = onNotification
    }

    func start() { connect() }

    func stop() async {
        stopped = true
        listenTask?.cancel()
        await client?.close()
        client = nil
        resumeUpWaiters()
    }

    var isModern: Bool {
        if case .up(let version) = status { return version == Self.modernVersion }
        return false
    }

    /// One request to this server, on behalf of a caller. A server that forgot our session
    /// (it restarted) is connected to again and the request is sent once more.
    func call(_ method: String, params: JSONValue?, name: String?, context: RequestContext) async throws -> JSONValue {
        do {
            return try await callOnce(method, params: params, name: name, context: context)
        } catch let error as RPCError where error.data == .string(HTTPTransport.sessionEnded) {
            await waitUntilUp(within: Self.reconnectWait)
            return try await callOnce(method, params: params, name: name, context: context)
        }
    }

    private func callOnce(_ method: String, params: JSONValue?, name: String?, context: RequestContext) async throws -> JSONValue {
        guard let client, case .up = status else {
            throw RPCError(code: JSONRPC.connectionClosed, message: "upstream '\(config.name)' is unavailable: \(status.text)")
        }
        return try await client.request(method, params: params, timeout: config.timeout, name: name, context: context)
    }

    /// A request of the gateway's own (not a caller's), e.g. to subscribe or set a log level.
    func send(_ method: String, params: JSONValue?) async throws -> JSONValue {
        try await callOnce(method, params: params, name: nil, context: .gateway)
    }

    private func waitUntilUp(within limit: Duration) async {
        if case .up = status { return }
        let deadline = Task { [weak self] in
            try? await Task.sleep(for: limit)
            await self?.resumeUpWaiters()
        }
        await withCheckedContinuation { upWaiters.append($0) }
        deadline.cancel()
    }

    private func resumeUpWaiters() {
        let waiters = upWaiters
        upWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    private func connect() {
        guard !stopped else { return }
        generation += 1
        let generation = self.generation
        let transport: UpstreamTransport = config.command != nil
            ? StdioTransport(config: config, logger: logger)
            : HTTPTransport(config: config, client: httpClient, logger: logger)
        let name = config.name
        let client = RPCClient(name: name, transport: transport, logger: logger) { [weak self] method, params in
            guard let self else { return }
            Task { await self.notification(method, params, generation: generation) }
        }
        self.client = client
        status = .starting
        Task {
            do {
                try await client.open { [weak self] reason in
                    guard let self else { return }
                    Task { await self.lost(reason, generation: generation) }
                }
                let version = try await self.handshake(client)
                guard generation == self.generation else { return }
                self.status = .up(protocolVersion: version)
                self.backoff = .milliseconds(250)
                self.logger.info("upstream up", metadata: ["upstream": "\(name)", "protocol": "\(version)"])
                self.resumeUpWaiters()
                if version == Self.modernVersion { self.listen(client, generation: generation) }
                await self.refresh()
            } catch {
                await client.close()
                self.lost("\(error)", generation: generation)
            }
        }
    }

    /// The stateless revision's stream of list changes: one long `subscriptions/listen` request,
    /// opened again (with backoff) whenever it ends while the server is up.
    private func listen(_ client: RPCClient, generation: Int) {
        listenTask?.cancel()
        listenTask = Task { [weak self] in
            var delay: Duration = .milliseconds(250)
            while !Task.isCancelled {
                let opened = ContinuousClock.now
                do {
                    _ = try await client.request("subscriptions/listen", params: .object(["notifications": .object([
                        "toolsListChanged": .bool(true), "resourcesListChanged": .bool(true), "promptsListChanged": .bool(true),
                    ])]), timeout: .seconds(365 * 24 * 3600))
                } catch let error as RPCError where error.code == JSONRPC.methodNotFound {
                    // The server offers no change stream: its lists are read again only when it comes back.
                    self?.logger.info("upstream offers no subscriptions/listen; list changes are picked up on reconnect",
                                      metadata: ["upstream": "\(client.name)"])
                    return
                } catch {}
                guard let self, await self.generation == generation, !Task.isCancelled else { return }
                if ContinuousClock.now - opened > .seconds(10) { delay = .milliseconds(250) }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
                // Whatever changed while the stream was down.
                await self.refresh()
            }
        }
    }

    private func lost(_ reason: String, generation: Int) {
        guard generation == self.generation, !stopped else { return }
        self.generation += 1
        listenTask?.cancel()
        status = .down(reason: reason)
        offer = Offer()
        if !settled {
            settled = true
            logger.error("upstream did not start; the gateway goes on without it until it does", metadata: ["upstream": "\(config.name)", "reason": "\(reason)"])
        } else {
            logger.warning("upstream down; reconnecting", metadata: ["upstream": "\(config.name)", "reason": "\(reason)", "in": "\(backoff)"])
        }
        onChange()
        let delay = backoff
        backoff = min(backoff * 2, .seconds(30))
        let old = client
        client = nil
        Task {
            await old?.close()
            try? await Task.sleep(for: delay)
            self.connect()
        }
    }

    /// Start-up gave up waiting for this server: the gateway is ready without it.
    func giveUpStarting(after limit: Duration) {
        guard !settled else { return }
        settled = true
        logger.error("upstream still not up after start-up limit; the gateway is ready without it", metadata: [
            "upstream": "\(config.name)", "limit": "\(limit)", "status": "\(status.text)"])
        onChange()
    }

    /// `server/discover` first for HTTP servers (the stateless revision); `initialize` otherwise.
    private func handshake(_ client: RPCClient) async throws -> String {
        // A process still starting (an interpreter importing its SDK on a busy machine) is slow,
        // not broken: until it first settles, its handshake may take most of the gateway's
        // start-up limit. Counting it failed at its call timeout made the gateway "ready"
        // without its tools (seen on a loaded machine: a stdio server with a 4 s timeout).
        let starting = !settled && config.url == nil
        let timeout = starting ? max(min(config.timeout, .seconds(10)), Self.firstHandshakeLimit) : min(config.timeout, .seconds(10))
        if config.url != nil {
            client.useModernEnvelope(protocolVersion: Self.modernVersion)
            do {
                let discovered = try await client.request("server/discover", params: nil, timeout: timeout)
                if discovered["supportedVersions"]?.arrayValue?.contains(.string(Self.modernVersion)) == true {
                    capabilities = discovered["capabilities"] ?? .object([:])
                    return Self.modernVersion
                }
            } catch let error as RPCError where error.code == JSONRPC.requestTimeout || error.code == JSONRPC.connectionClosed {
                // Slow or unreachable says nothing of the revision it speaks: the handshake fails and
                // is tried again. Taking it for an older server settled a stateless one on the
                // session handshake for good (seen on a loaded machine), and its stateless calls failed.
                throw error
            } catch {
                // It answered, and not with the stateless revision: an older server.
            }
            client.useHandshake()
        }
        return try await initialize(client, timeout: timeout)
    }

    private func initialize(_ client: RPCClient, timeout: Duration) async throws -> String {
        let result = try await client.request("initialize", params: .object([
            "protocolVersion": .string(Self.newestHandshakeVersion),
            "capabilities": Self.relayedCapabilities,
            "clientInfo": .object(["name": .string("portless-mcp-gateway"), "version": .string("1.0")]),
        ]), timeout: timeout)
        let version = result["protocolVersion"]?.stringValue ?? Self.newestHandshakeVersion
        client.settle(protocolVersion: version)
        capabilities = result["capabilities"] ?? .object([:])
        try await client.notify("notifications/initialized", params: nil)
        return version
    }

    private func notification(_ method: String, _ params: JSONValue?, generation: Int) async {
        guard generation == self.generation else { return }
        switch method {
        case "notifications/tools/list_changed", "notifications/resources/list_changed", "notifications/prompts/list_changed":
            await refresh()
        default:
            onNotification(config.name, method, params)
        }
    }

    /// Lists everything again and tells the gateway. Coalesces bursts of change notifications.
    func refresh() async {
        if refreshing { refreshAgain = true; return }
        refreshing = true
        defer { refreshing = false }
        repeat {
            refreshAgain = false
            guard let client, case .up = status else { return }
            var next = Offer()
            do {
                if capabilities["tools"] != nil { next.tools = try await listAll(client, "tools/list", key: "tools") }
                if capabilities["resources"] != nil {
                    next.resources = try await listAll(client, "resources/list", key: "resources")
                    next.templates = (try? await listAll(client, "resources/templates/list", key: "resourceTemplates")) ?? []
                }
                if capabilities["prompts"] != nil { next.prompts = try await listAll(client, "prompts/list", key: "prompts") }
            } catch {
                logger.warning("listing upstream failed", metadata: ["upstream": "\(config.name)", "error": "\(error)"])
                if !settled {
                    settled = true
                    onChange()
                }
                continue
            }
            offer = next
            settled = true
            onChange()
        } while refreshAgain
    }

    private func listAll(_ client: RPCClient, _ method: String, key: String) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        var cursor: JSONValue?
        for _ in 0..<Self.maxPages {
            let params: JSONValue = cursor.map { .object(["cursor": $0]) } ?? .object([:])
            let page = try await client.request(method, params: params, timeout: config.timeout)
            items += page[key]?.arrayValue ?? []
            guard let next = page["nextCursor"], next != .null else { return items }
            cursor = next
        }
        return items
    }
}
