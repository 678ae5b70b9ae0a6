import AsyncHTTPClient
import Foundation
import Logging
import GatewayKit
import Shared

/// The MCP gateway: one MCP endpoint over every upstream server, filtered per caller by the
/// controller's tool policies, with definitions pinned and every request audited.
///
/// Protocol-independent: the HTTP layer (`StreamableHTTPHandler`) turns both wire generations
/// into calls of `handle` (see MCPGateway+Requests.swift) and streams what sessions and
/// listeners receive. What an upstream says about a caller's request reaches that caller only.
public actor MCPGateway {
    public static let serverInfo: JSONValue = .object(["name": .string("portless-mcp-gateway"), "version": .string("1.0")])
    static let handshakeVersions = ["2025-06-18", "2025-11-25"]
    static let modernVersions = ["2026-07-28"]
    /// How long start-up waits for upstreams to list what they offer before the gateway is
    /// ready without the late ones (each is logged).
    static let startupLimit: Duration = .seconds(15)

    public nonisolated let service: String
    let config: MCPGatewayConfig
    let logger: Logger
    private let control: GatewayControl
    private let audit: AuditReporter
    private let httpClient: HTTPClient
    private(set) var upstreams: [String: Upstream] = [:]
    private var upstreamOrder: [Upstream] = []
    private(set) var catalog = Catalog()
    private(set) var statusJSON = Data("{}".utf8)
    private var view: GatewayView?
    private var policy: MCPToolPolicy?
    private var callerViews: [String: CallerView] = [:]
    /// Verifies the people agents act for; signs the gateway's statements to upstreams.
    nonisolated let people: PersonVerifier
    nonisolated let assertions: AssertionSigner?
    /// Definition hashes the controller has acknowledged, and the whole catalog it last did.
    private var reportedHashes: [String: String] = [:]
    private var reportedEntries: [CatalogEntry]?
    private var reporter: Task<Void, Never>?
    var sessions = SessionTable()
    private var listeners: [UUID: Listener] = [:]
    private var inFlight: [String: @Sendable () -> Void] = [:]
    private var pollTask: Task<Void, Never>?
    private var rebuildScheduled = false
    private var ready = false
    private var readyWaiters: [CheckedContinuation<Void, Never>] = []
    private var upstreamLogLevel: LogLevel?
    /// Resource URIs the gateway subscribed to upstream for its callers → the upstream.
    var upstreamSubscriptions: [String: String] = [:]
    /// Calls parked for stateless callers' answers, by id.
    var parked: [String: ParkedCall] = [:]
    nonisolated let callerRequests = CallerRequests()

    struct Listener {
        let caller: Caller
        let subscriptionID: JSONValue
        let kinds: Set<ListKind>
        let resources: Set<String>
        let stream: MessageStream
        var fingerprints: [ListKind: Int] = [:]
    }

    /// One client for every MCP gateway's HTTP upstreams (pooled keep-alive connections). No
    /// tracer: a span per call costs a task-local scope even when nothing records it.
    static let upstreamClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public init(service: String, config: MCPGatewayConfig, control: GatewayControl, assertions: AssertionSigner? = nil, logger: Logger) {
        self.service = service
        self.config = config
        self.control = control
        self.logger = logger
        self.audit = AuditReporter(control: control, logger: logger)
        self.httpClient = Self.upstreamClient
        self.people = PersonVerifier(logger: logger)
        self.assertions = assertions
    }

    public func start() {
        for upstreamConfig in config.upstreams {
            let upstream = Upstream(config: upstreamConfig, httpClient: httpClient, logger: logger, onChange: { [weak self] in
                Task { await self?.scheduleRebuild() }
            }, onNotification: { [weak self] upstream, method, params in
                Task { await self?.relay(upstream: upstream, method: method, params: params) }
            })
            upstreams[upstreamConfig.name] = upstream
            upstreamOrder.append(upstream)
        }
        for upstream in upstreamOrder { Task { await upstream.start() } }
        pollTask = Task { [weak self] in
            var rounds = 0
            while !Task.isCancelled {
                await self?.poll()
                rounds += 1
                if rounds % 4 == 0 { await self?.expireParkedCalls() }
                if rounds % 240 == 0 { await self?.expireSessions() }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        Task { [weak self, upstreamOrder] in
            try? await Task.sleep(for: Self.startupLimit)
            for upstream in upstreamOrder { await upstream.giveUpStarting(after: Self.startupLimit) }
            try? await Task.sleep(for: .seconds(10))
            await self?.becomeReady(forced: true)
        }
    }

    public func stop() async {
        pollTask?.cancel()
        reporter?.cancel()
        for upstream in upstreamOrder { await upstream.stop() }
        for session in sessions.all { _ = sessions.remove(session.id) }
        for listener in listeners.values { listener.stream.continuation.finish() }
        for call in parked.values { call.abandon() }
        becomeReady(forced: true)
        await audit.flush(deadline: .now + .seconds(3))
    }

    // MARK: readiness

    /// Ready means every upstream has listed what it offers (or start-up gave up on it, logged),
    /// the controller has pinned those definitions, and the policy view is here: a caller's
    /// first list is then complete. The tunneler binds the service only once it is ready.
    public func awaitReady() async {
        if ready { return }
        await withCheckedContinuation { readyWaiters.append($0) }
    }

    public var isReady: Bool { ready }

    private func becomeReady(forced: Bool = false) {
        guard !ready else { return }
        if forced { logger.warning("gateway declared ready without everything it waits for (controller or upstreams slow)") }
        ready = true
        let waiters = readyWaiters
        readyWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
        if !forced { logger.info("MCP gateway ready", metadata: ["tools": "\(catalog.tools.count)", "upstreams": "\(statusJSON.count > 2 ? String(decoding: statusJSON, as: UTF8.self) : "")"]) }
    }

    private func checkReady() async {
        guard !ready, view != nil, reportedHashes.count >= catalog.tools.count,
              catalog.tools.allSatisfy({ reportedHashes[$0.exposedName] == $0.definitionHash }) else { return }
        for upstream in upstreamOrder where !(await upstream.settled) { return }
        becomeReady()
    }

    // MARK: controller view and catalog

    private func poll() async {
        do {
            if let fresh = try await control.fetchView(known: view?.generation) { apply(fresh) }
        } catch {
            logger.debug("gateway view not refreshed", metadata: ["error": "\(error)"])
        }
        await checkReady()
    }

    /// Every `mcp-tools.v1` config on the service counts: their rules are merged, so a deny in
    /// any of them wins. One that cannot be read shows nothing (it must not widen access).
    func apply(_ fresh: GatewayView) {
        view = fresh
        people.update(signers: fresh.signers, delegations: fresh.delegations)
        let (merged, unreadable) = MCPToolPolicy.merged(fresh.configs)
        for (config, error) in unreadable {
            logger.error("tool policy unreadable; showing nothing", metadata: ["config": "\(config)", "error": "\(error)"])
        }
        policy = merged
        changed()
    }

    /// The caller with the person its `Authorization` names (verified, and delegated to this
    /// agent), or why it is refused — before anything reaches an upstream. A request naming
    /// nobody is the agent's own, unless the policy requires a person.
    func identify(_ caller: Caller, authorization: String?) async -> Result<Caller, PersonTokenError> {
        await awaitView()
        let attributes = view?.callers[caller.identity] ?? []
        switch await people.person(authorization: authorization, agent: caller.identity, agentAttributes: attributes) {
        case .failure(let error):
            record(type: "mcp.request", caller: caller, detail: ["refused": .string(error.description)])
            return .failure(error)
        case .success(nil):
            if policy?.requirePerson == true {
                let error = PersonTokenError.personRequired(service: service)
                record(type: "mcp.request", caller: caller, detail: ["refused": .string(error.description)])
                return .failure(error)
            }
            return .success(caller)
        case .success(let person?):
            var identified = caller
            identified.person = person
            return .success(identified)
        }
    }

    private func scheduleRebuild() {
        guard !rebuildScheduled else { return }
        rebuildScheduled = true
        Task { await self.rebuild() }
    }

    private func rebuild() async {
        rebuildScheduled = false
        var parts: [(config: UpstreamConfig, status: Upstream.Status, offer: Upstream.Offer)] = []
        for upstream in upstreamOrder { parts.append((upstream.config, await upstream.status, await upstream.offer)) }
        let next = Catalog(upstreams: parts, separator: config.separator ?? "__")
        for collision in next.collisions where !catalog.collisions.contains(collision) {
            logger.error("name collision", metadata: ["detail": "\(collision)"])
            record(type: "mcp.upstream", caller: nil, detail: ["event": .string("collision"), "detail": .string(collision)])
        }
        for (name, status) in next.status where catalog.status[name] != status {
            record(type: "mcp.upstream", caller: nil, detail: ["upstream": .string(name), "status": .string(status)])
            GatewayMetrics.upstream(gateway: "mcp", service: service, upstream: name, up: status.hasPrefix("up"))
        }
        catalog = next
        statusJSON = JSONValue.object(next.status.mapValues { .string($0) }).encoded()
        changed()
        reportDefinitions()
        await checkReady()
    }

    /// Reports the catalog (with its tools' definitions) until the controller has acknowledged
    /// it: a tool is shown only once its pin is confirmed, so an unreachable controller hides new
    /// tools, never shows them unpinned.
    private func reportDefinitions() {
        guard reporter == nil else { return }
        reporter = Task { [weak self] in
            var delay: Duration = .milliseconds(100)
            while !Task.isCancelled, let self {
                guard let entries = await self.unreportedCatalog() else { break }
                do {
                    let report = UUID().uuidString
                    let parts = CatalogEntry.parts(entries)
                    for (index, part) in parts.enumerated() {
                        try await self.control.reportCatalog(part, report: report, complete: index == parts.count - 1)
                    }
                    await self.acknowledged(entries)
                    delay = .milliseconds(100)
                } catch {
                    self.logger.warning("tool definitions not pinned yet; their tools stay hidden until they are", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(2))
                }
            }
            await self?.reporterDone()
        }
    }

    /// What the gateway offers now, when the controller has not acknowledged exactly that.
    private func unreportedCatalog() -> [CatalogEntry]? {
        let entries = (catalog.tools + catalog.resources + catalog.templates + catalog.prompts).map(\.entry)
        return entries == reportedEntries ? nil : entries
    }

    private func acknowledged(_ entries: [CatalogEntry]) async {
        reportedEntries = entries
        for entry in entries where entry.kind == .tool { reportedHashes[entry.name] = entry.hash ?? "" }
        await poll()
    }

    private func reporterDone() async {
        reporter = nil
        if unreportedCatalog() != nil { reportDefinitions() }
        await checkReady()
    }

    /// The catalog or the view changed: drop cached views, tell live sessions and listeners
    /// whose lists changed.
    private func changed() {
        callerViews.removeAll()
        for session in sessions.all {
            let view = callerView(session.caller)
            var fingerprints = session.fingerprints
            for kind in ListKind.allCases {
                let now = view.fingerprint(kind)
                if let before = fingerprints[kind], before != now {
                    sessions.deliver(JSONRPC.notification(kind.changedNotification, params: nil).encoded(), to: session.id)
                }
                fingerprints[kind] = now
            }
            sessions[session.id]?.fingerprints = fingerprints
        }
        for (id, listener) in listeners {
            let view = callerView(listener.caller)
            var fingerprints = listener.fingerprints
            for kind in listener.kinds {
                let now = view.fingerprint(kind)
                if let before = fingerprints[kind], before != now {
                    let params: JSONValue = .object(["_meta": .object(["io.modelcontextprotocol/subscriptionId": listener.subscriptionID])])
                    listener.stream.continuation.yield(JSONRPC.notification(kind.changedNotification, params: params).encoded())
                }
                fingerprints[kind] = now
            }
            listeners[id]?.fingerprints = fingerprints
        }
    }

    /// Before the first view arrives (the tunneler is still connecting), wait a little for it.
    func awaitView() async {
        for _ in 0..<30 where view == nil {
            await poll()
            if view == nil { try? await Task.sleep(for: .milliseconds(100)) }
        }
    }

    func callerView(_ caller: Caller) -> CallerView {
        let key = Self.viewKey(caller)
        if let cached = callerViews[key] { return cached }
        let grant: MCPToolPolicy.Grant
        if let view, let attributes = view.callers[caller.identity] {
            // Zero trust: without a tool policy attached to the service, a caller sees nothing.
            grant = policy?.grant(for: caller.identity, attributes: attributes, person: caller.person) ?? .nothing
        } else {
            grant = .nothing
        }
        let computed = CallerView(catalog: catalog, grant: grant, pins: view?.pins ?? [:])
        callerViews[key] = computed
        return computed
    }

    /// Callers that see the same: one agent, acting for the same person with the same attributes.
    private static func viewKey(_ caller: Caller) -> String {
        guard let person = caller.person else { return caller.identity }
        return ([caller.identity, person.issuer, person.name] + person.attributes).joined(separator: "\u{1F}")
    }

    // MARK: upstream notifications that concern several callers

    /// A resource changed: sessions and listeners subscribed to it that may still read it hear of it.
    private func relay(upstream: String, method: String, params: JSONValue?) {
        guard method == "notifications/resources/updated", let uri = params?["uri"]?.stringValue else { return }
        let data = JSONRPC.notification(method, params: .object(["uri": .string(uri)])).encoded()
        for session in sessions.subscribers(of: uri) where callerView(session.caller).resource(uri: uri)?.server == upstream {
            sessions.deliver(data, to: session.id)
        }
        for listener in listeners.values where listener.resources.contains(uri) && callerView(listener.caller).resource(uri: uri)?.server == upstream {
            let meta: JSONValue = .object(["io.modelcontextprotocol/subscriptionId": listener.subscriptionID])
            listener.stream.continuation.yield(JSONRPC.notification(method, params: .object(["uri": .string(uri), "_meta": meta])).encoded())
        }
    }

    /// Upstreams of the handshake revisions send log messages at or above one level for all:
    /// the lowest any session asked for (each session's own level is applied as messages arrive).
    func updateUpstreamLogLevel() async {
        guard let lowest = sessions.lowestLogLevel, lowest != upstreamLogLevel else { return }
        upstreamLogLevel = lowest
        for upstream in upstreamOrder {
            let modern = await upstream.isModern
            let logs = await upstream.capabilities["logging"] != nil
            guard !modern, logs else { continue }
            _ = try? await upstream.send("logging/setLevel", params: .object(["level": .string(lowest.rawValue)]))
        }
    }

    // MARK: sessions (2025-06-18, 2025-11-25)

    func openSession(caller: Caller, requestedVersion: String?, capabilities: JSONValue) -> Result<(id: String, version: String), RPCError> {
        let version = requestedVersion.flatMap { Self.handshakeVersions.contains($0) ? $0 : nil } ?? Self.handshakeVersions.last ?? "2025-11-25"
        switch sessions.open(caller: caller, version: version, capabilities: capabilities) {
        case .failure(let error): return .failure(error)
        case .success(let session):
            let view = callerView(caller)
            for kind in ListKind.allCases { sessions[session.id]?.fingerprints[kind] = view.fingerprint(kind) }
            return .success((session.id, version))
        }
    }

    func session(_ id: String) -> Session? { sessions.touch(id) }

    private func expireSessions() async {
        for session in sessions.expire() { await forget(session) }
    }

    private func expireParkedCalls() {
        for (id, call) in parked where call.isExpired { parked.removeValue(forKey: id)?.abandon() }
    }

    func closeSession(_ id: String, caller: Caller) async -> Bool {
        guard let session = sessions[id], session.caller.isSameParty(as: caller), let removed = sessions.remove(id) else { return false }
        await forget(removed)
        return true
    }

    /// What a session leaves behind when it ends: its requests in flight and its subscriptions.
    private func forget(_ session: Session) async {
        for key in inFlight.keys where key.hasPrefix(session.id + "/") { inFlight.removeValue(forKey: key)?() }
        for uri in session.subscriptions where !sessions.anySubscribes(to: uri) && !listeners.values.contains(where: { $0.resources.contains(uri) }) {
            await unsubscribeUpstream(uri)
        }
    }

    /// The session's stream of server messages (the GET stream).
    func attachStream(session id: String) -> AsyncStream<Data>? {
        let (stream, messages) = MessageStream.make()
        guard let key = sessions.attach(messages, to: id) else { return nil }
        messages.continuation.onTermination = { [weak self] _ in Task { await self?.detach(session: id, key: key) } }
        return stream
    }

    private func detach(session id: String, key: UUID) { sessions.detach(key, from: id) }

    func track(session: String, request: JSONValue, cancel: @escaping @Sendable () -> Void) {
        inFlight["\(session)/\(request.encoded().base64EncodedString())"] = cancel
    }

    func untrack(session: String, request: JSONValue) {
        inFlight.removeValue(forKey: "\(session)/\(request.encoded().base64EncodedString())")
    }

    func cancel(session: String, request: JSONValue) {
        inFlight.removeValue(forKey: "\(session)/\(request.encoded().base64EncodedString())")?()
    }

    // MARK: subscriptions/listen (2026-07-28)

    func listen(caller: Caller, subscriptionID: JSONValue, filter: JSONValue?) async -> AsyncStream<Data> {
        var kinds = Set<ListKind>()
        if filter?["toolsListChanged"]?.boolValue == true { kinds.insert(.tools) }
        if filter?["resourcesListChanged"]?.boolValue == true { kinds.formUnion([.resources, .templates]) }
        if filter?["promptsListChanged"]?.boolValue == true { kinds.insert(.prompts) }
        let view = callerView(caller)
        var resources = Set<String>()
        for uri in filter?["resourceSubscriptions"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
            guard let normalized = ResourceURI.normalized(uri), view.resource(uri: normalized) != nil else { continue }
            resources.insert(normalized)
        }
        let (stream, messages) = MessageStream.make()
        let key = UUID()
        var listener = Listener(caller: caller, subscriptionID: subscriptionID, kinds: kinds, resources: resources, stream: messages)
        for kind in kinds { listener.fingerprints[kind] = view.fingerprint(kind) }
        listeners[key] = listener
        messages.continuation.onTermination = { [weak self] _ in Task { await self?.removeListener(key) } }
        var honored: [String: JSONValue] = [:]
        if kinds.contains(.tools) { honored["toolsListChanged"] = .bool(true) }
        if kinds.contains(.resources) { honored["resourcesListChanged"] = .bool(true) }
        if kinds.contains(.prompts) { honored["promptsListChanged"] = .bool(true) }
        var subscribed: [String] = []
        for uri in resources.sorted() where await subscribeUpstream(uri, for: caller) == nil { subscribed.append(uri) }
        if !subscribed.isEmpty { honored["resourceSubscriptions"] = .array(subscribed.map { .string($0) }) }
        let meta: JSONValue = .object(["io.modelcontextprotocol/subscriptionId": subscriptionID])
        messages.continuation.yield(JSONRPC.notification("notifications/subscriptions/acknowledged",
                                                         params: .object(["notifications": .object(honored), "_meta": meta])).encoded())
        return stream
    }

    private func removeListener(_ key: UUID) async {
        guard let listener = listeners.removeValue(forKey: key) else { return }
        for uri in listener.resources where !sessions.anySubscribes(to: uri) && !listeners.values.contains(where: { $0.resources.contains(uri) }) {
            await unsubscribeUpstream(uri)
        }
    }

    // MARK: resource subscriptions upstream

    /// Subscribes upstream to `uri` for `caller` once (shared by every subscriber); nil on
    /// success, else why not.
    func subscribeUpstream(_ uri: String, for caller: Caller) async -> RPCError? {
        guard let item = callerView(caller).resource(uri: uri), let upstream = upstreams[item.server] else {
            return RPCError(code: JSONRPC.resourceNotFound, message: "Resource not found", data: .object(["uri": .string(uri)]))
        }
        if upstreamSubscriptions[uri] != nil { return nil }
        guard await upstream.capabilities["resources"]?["subscribe"]?.boolValue == true else {
            return RPCError(code: JSONRPC.methodNotFound, message: "the server of '\(uri)' does not offer resource subscriptions")
        }
        do {
            _ = try await upstream.send("resources/subscribe", params: .object(["uri": .string(uri)]))
            upstreamSubscriptions[uri] = item.server
            return nil
        } catch let error as RPCError {
            return error
        } catch {
            return RPCError(code: JSONRPC.internalError, message: "\(error)")
        }
    }

    private func unsubscribeUpstream(_ uri: String) async {
        guard let server = upstreamSubscriptions.removeValue(forKey: uri), let upstream = upstreams[server] else { return }
        _ = try? await upstream.send("resources/unsubscribe", params: .object(["uri": .string(uri)]))
    }

    // MARK: audit

    func record(type: String, caller: Caller?, detail: [String: JSONValue]) {
        if type == "mcp.request" { observe(caller: caller, detail: detail) }
        // Encoded when its batch is sent, not on the request's path.
        audit.record {
            GatewayAuditEvent(type: type, identity: caller?.identity, user: caller?.person?.name, circuit: caller?.circuit,
                              detail: String(decoding: JSONValue.object(detail).encoded(), as: UTF8.self))
        }
    }
}
