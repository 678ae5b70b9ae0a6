import AsyncHTTPClient
import Foundation
import Logging
import GatewayKit
import Shared

/// The MCP gateway: one MCP endpoint over every upstream server, filtered per caller by the
/// controller's tool policies, with definitions pinned and every request audited.
///
/// Protocol-independent: the HTTP layer (`StreamableHTTPHandler`) turns both wire generations
/// into calls of `handle`, and streams what `Session`s and listeners receive.
public actor MCPGateway {
    public static let serverInfo: JSONValue = .object(["name": .string("portless-mcp-gateway"), "version": .string("1.0")])
    static let handshakeVersions = ["2025-06-18", "2025-11-25"]
    static let modernVersions = ["2026-07-28"]

    let service: String
    let config: MCPGatewayConfig
    let logger: Logger
    private let control: GatewayControl
    private let audit: AuditReporter
    private let httpClient: HTTPClient
    private var upstreams: [Upstream] = []
    private var catalog = Catalog()
    private var statusJSON = Data("{}".utf8)
    private var view: GatewayView?
    private var policy: MCPToolPolicy?
    private var callerViews: [String: CallerView] = [:]
    private var reportedHashes: [String: String] = [:]
    private var sessions: [String: Session] = [:]
    private var listeners: [UUID: Listener] = [:]
    private var inFlight: [String: @Sendable () -> Void] = [:]
    private var pollTask: Task<Void, Never>?
    private var rebuildScheduled = false

    final class Stream: @unchecked Sendable {
        let continuation: AsyncStream<Data>.Continuation
        init(_ continuation: AsyncStream<Data>.Continuation) { self.continuation = continuation }
    }

    struct Session {
        let id: String
        let caller: Caller
        let protocolVersion: String
        var streams: [UUID: Stream] = [:]
        var fingerprints: [ListKind: Int] = [:]
        var lastUsed = ContinuousClock.now
    }

    /// A session with no request and no open stream for this long is forgotten (its client gets
    /// 404 and initializes again, as the specification provides).
    static let sessionIdleLimit: Duration = .seconds(30 * 60)

    struct Listener {
        let caller: Caller
        let subscriptionID: JSONValue
        let kinds: Set<ListKind>
        let stream: Stream
        var fingerprints: [ListKind: Int] = [:]
    }

    public init(service: String, config: MCPGatewayConfig, control: GatewayControl, logger: Logger) {
        self.service = service
        self.config = config
        self.control = control
        self.logger = logger
        self.audit = AuditReporter(control: control, logger: logger)
        self.httpClient = HTTPClient.shared
    }

    public func start() {
        for upstreamConfig in config.upstreams {
            let upstream = Upstream(config: upstreamConfig, httpClient: httpClient, logger: logger, onChange: { [weak self] in
                Task { await self?.scheduleRebuild() }
            }, onNotification: { [weak self] upstream, method, params in
                Task { await self?.relay(upstream: upstream, method: method, params: params) }
            })
            upstreams.append(upstream)
        }
        for upstream in upstreams { Task { await upstream.start() } }
        pollTask = Task { [weak self] in
            var rounds = 0
            while !Task.isCancelled {
                await self?.poll()
                rounds += 1
                if rounds % 240 == 0 { await self?.forgetIdleSessions() }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    public func stop() async {
        pollTask?.cancel()
        for upstream in upstreams { await upstream.stop() }
        for session in sessions.values { for stream in session.streams.values { stream.continuation.finish() } }
        for listener in listeners.values { listener.stream.continuation.finish() }
        await audit.flush(deadline: .now + .seconds(3))
    }

    // MARK: controller view and catalog

    private func poll() async {
        do {
            if let fresh = try await control.fetchView(known: view?.generation) { apply(fresh) }
        } catch {
            logger.debug("gateway view not refreshed", metadata: ["error": "\(error)"])
        }
    }

    func apply(_ fresh: GatewayView) {
        view = fresh
        policy = nil
        for config in fresh.configs where config.type == MCPToolPolicy.configType {
            do { policy = try config.data.decode(MCPToolPolicy.self) } catch {
                // A policy we cannot read must not widen access: show nothing.
                policy = MCPToolPolicy(rules: [])
                logger.error("tool policy unreadable; showing nothing", metadata: ["config": "\(config.name)", "error": "\(error)"])
            }
        }
        changed()
    }

    private func scheduleRebuild() {
        guard !rebuildScheduled else { return }
        rebuildScheduled = true
        Task { await self.rebuild() }
    }

    private func rebuild() async {
        rebuildScheduled = false
        var parts: [(config: UpstreamConfig, status: Upstream.Status, offer: Upstream.Offer)] = []
        for upstream in upstreams { parts.append((upstream.config, await upstream.status, await upstream.offer)) }
        let next = Catalog(upstreams: parts, separator: config.separator ?? "__")
        for collision in next.collisions where !catalog.collisions.contains(collision) {
            logger.error("name collision", metadata: ["detail": "\(collision)"])
            record(type: "mcp.upstream", caller: nil, detail: ["event": .string("collision"), "detail": .string(collision)])
        }
        for (name, status) in next.status where catalog.status[name] != status {
            record(type: "mcp.upstream", caller: nil, detail: ["upstream": .string(name), "status": .string(status)])
        }
        catalog = next
        statusJSON = JSONValue.object(next.status.mapValues { .string($0) }).encoded()
        changed()
        var hashes: [String: String] = [:]
        for tool in next.tools { hashes[tool.exposedName] = tool.definitionHash }
        let newOrChanged = hashes.filter { reportedHashes[$0.key] != $0.value }
        if !newOrChanged.isEmpty {
            do {
                try await control.reportDefinitions(newOrChanged)
                for (name, hash) in newOrChanged { reportedHashes[name] = hash }
                await poll()
            } catch {
                logger.warning("tool definitions not reported yet", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The catalog or the view changed: drop cached views, tell live sessions what changed.
    private func changed() {
        callerViews.removeAll()
        for (id, session) in sessions {
            let view = callerView(session.caller)
            var fingerprints = session.fingerprints
            for kind in ListKind.allCases {
                let now = view.fingerprint(kind)
                if let before = fingerprints[kind], before != now {
                    let data = JSONRPC.notification(kind.changedNotification, params: nil).encoded()
                    for stream in session.streams.values { stream.continuation.yield(data) }
                }
                fingerprints[kind] = now
            }
            sessions[id]?.fingerprints = fingerprints
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
        if let cached = callerViews[caller.identity] { return cached }
        let grant: MCPToolPolicy.Grant
        if let view, let attributes = view.callers[caller.identity] {
            // Zero trust: without a tool policy attached to the service, a caller sees nothing.
            grant = policy?.grant(for: caller.identity, attributes: attributes) ?? .nothing
        } else {
            grant = .nothing
        }
        let computed = CallerView(catalog: catalog, grant: grant, pins: view?.pins ?? [:])
        callerViews[caller.identity] = computed
        return computed
    }

    // MARK: upstream notifications

    private func relay(upstream: String, method: String, params: JSONValue?) {
        guard method == "notifications/message" || method == "notifications/resources/updated" else { return }
        let data = JSONRPC.notification(method, params: params).encoded()
        for session in sessions.values {
            let view = callerView(session.caller)
            guard view.tools.contains(where: { catalog.tools[$0].server == upstream }) || view.resources.contains(where: { catalog.resources[$0].server == upstream }) else { continue }
            for stream in session.streams.values { stream.continuation.yield(data) }
        }
    }

    // MARK: sessions (2025-06-18, 2025-11-25)

    func openSession(caller: Caller, requestedVersion: String?) -> (id: String, version: String) {
        let version = requestedVersion.flatMap { Self.handshakeVersions.contains($0) ? $0 : nil } ?? Self.handshakeVersions.last ?? "2025-11-25"
        let id = UUID().uuidString
        var session = Session(id: id, caller: caller, protocolVersion: version)
        let view = callerView(caller)
        for kind in ListKind.allCases { session.fingerprints[kind] = view.fingerprint(kind) }
        sessions[id] = session
        return (id, version)
    }

    func session(_ id: String) -> Session? {
        sessions[id]?.lastUsed = .now
        return sessions[id]
    }

    private func forgetIdleSessions() {
        let now = ContinuousClock.now
        sessions = sessions.filter { !$0.value.streams.isEmpty || now - $0.value.lastUsed < Self.sessionIdleLimit }
    }

    func closeSession(_ id: String, caller: Caller) -> Bool {
        guard let session = sessions[id], session.caller.identity == caller.identity else { return false }
        for stream in session.streams.values { stream.continuation.finish() }
        sessions.removeValue(forKey: id)
        for key in inFlight.keys where key.hasPrefix(id + "/") { inFlight.removeValue(forKey: key)?() }
        return true
    }

    /// The session's stream of server messages (the GET stream).
    func attachStream(session id: String) -> AsyncStream<Data>? {
        guard sessions[id] != nil else { return nil }
        let (stream, continuation) = AsyncStream<Data>.makeStream(bufferingPolicy: .bufferingNewest(1_000))
        let key = UUID()
        sessions[id]?.streams[key] = Stream(continuation)
        continuation.onTermination = { [weak self] _ in Task { await self?.detach(session: id, key: key) } }
        return stream
    }

    private func detach(session id: String, key: UUID) { sessions[id]?.streams.removeValue(forKey: key) }

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

    func listen(caller: Caller, subscriptionID: JSONValue, filter: JSONValue?) -> AsyncStream<Data> {
        var kinds = Set<ListKind>()
        if filter?["toolsListChanged"]?.boolValue == true { kinds.insert(.tools) }
        if filter?["resourcesListChanged"]?.boolValue == true { kinds.formUnion([.resources, .templates]) }
        if filter?["promptsListChanged"]?.boolValue == true { kinds.insert(.prompts) }
        let (stream, continuation) = AsyncStream<Data>.makeStream(bufferingPolicy: .bufferingNewest(1_000))
        let key = UUID()
        var listener = Listener(caller: caller, subscriptionID: subscriptionID, kinds: kinds, stream: Stream(continuation))
        let view = callerView(caller)
        for kind in kinds { listener.fingerprints[kind] = view.fingerprint(kind) }
        listeners[key] = listener
        continuation.onTermination = { [weak self] _ in Task { await self?.removeListener(key) } }
        var honored: [String: JSONValue] = [:]
        if kinds.contains(.tools) { honored["toolsListChanged"] = .bool(true) }
        if kinds.contains(.resources) { honored["resourcesListChanged"] = .bool(true) }
        if kinds.contains(.prompts) { honored["promptsListChanged"] = .bool(true) }
        let meta: JSONValue = .object(["io.modelcontextprotocol/subscriptionId": subscriptionID])
        continuation.yield(JSONRPC.notification("notifications/subscriptions/acknowledged",
                                                params: .object(["notifications": .object(honored), "_meta": meta])).encoded())
        return stream
    }

    private func removeListener(_ key: UUID) { listeners.removeValue(forKey: key) }

    // MARK: requests

    enum Reply: Sendable {
        case value(JSONValue)
        /// The `result` object, already encoded.
        case encoded(Data)
        case error(RPCError)
    }

    func capabilities() -> JSONValue {
        .object([
            "tools": .object(["listChanged": .bool(true)]),
            "resources": .object(["listChanged": .bool(true)]),
            "prompts": .object(["listChanged": .bool(true)]),
            "logging": .object([:]),
            "completions": .object([:]),
        ])
    }

    var instructions: String {
        "Portless MCP gateway for '\(service)': tools of several internal servers, named <server>\(config.separator ?? "__")<tool>."
    }

    /// Serves one request for `caller`. `modern` selects the 2026-07-28 result shapes.
    func handle(method: String, params: JSONValue?, caller: Caller, session: String?, modern: Bool,
                onProgress: (@Sendable (JSONValue) -> Void)?) async -> Reply {
        if view == nil { await awaitView() }
        let started = ContinuousClock.now
        var target: String?
        var server: String?
        let reply: Reply
        switch method {
        case "ping":
            reply = .value(.object([:]))
        case "tools/list", "resources/list", "resources/templates/list", "prompts/list":
            let kind: ListKind = method == "tools/list" ? .tools : method == "prompts/list" ? .prompts : method == "resources/list" ? .resources : .templates
            do {
                reply = .encoded(try callerView(caller).page(kind, cursor: params?["cursor"]?.stringValue, pageSize: config.pageSize ?? 1_000,
                                                              modern: modern, status: statusJSON))
            } catch let error as RPCError { reply = .error(error) } catch { reply = .error(RPCError(code: JSONRPC.internalError, message: "\(error)")) }
        case "tools/call":
            let name = params?["name"]?.stringValue ?? ""
            target = name
            if let item = callerView(caller).tool(named: name) {
                server = item.server
                reply = await forward(method, params: params?.setting("name", .string(item.upstreamName)), to: item.server, name: item.upstreamName,
                                      modern: modern, onProgress: onProgress)
            } else {
                reply = .error(RPCError(code: JSONRPC.invalidParams, message: "Unknown tool: \(name)"))
            }
        case "prompts/get":
            let name = params?["name"]?.stringValue ?? ""
            target = name
            if let item = callerView(caller).prompt(named: name) {
                server = item.server
                reply = await forward(method, params: params?.setting("name", .string(item.upstreamName)), to: item.server, name: item.upstreamName,
                                      modern: modern, onProgress: onProgress)
            } else {
                reply = .error(RPCError(code: JSONRPC.invalidParams, message: "Unknown prompt: \(name)"))
            }
        case "resources/read":
            let uri = params?["uri"]?.stringValue ?? ""
            target = uri
            if let item = callerView(caller).resource(uri: uri) {
                server = item.server
                reply = await forward(method, params: params, to: item.server, name: uri, modern: modern, onProgress: onProgress)
            } else {
                reply = .error(RPCError(code: JSONRPC.resourceNotFound, message: "Resource not found", data: .object(["uri": .string(uri)])))
            }
        case "completion/complete":
            reply = await complete(params: params, caller: caller, modern: modern)
        case "logging/setLevel":
            reply = .value(.object([:]))
        default:
            reply = .error(RPCError(code: JSONRPC.methodNotFound, message: "Method not found: \(method)"))
        }
        if method != "ping" {
            let elapsed = (ContinuousClock.now - started).components
            let microseconds = elapsed.seconds * 1_000_000 + elapsed.attoseconds / 1_000_000_000_000
            var detail: [String: JSONValue] = ["method": .string(method), "latencyMs": .number(Double(microseconds) / 1000)]
            if let session { detail["session"] = .string(session) }
            if let target { detail["target"] = .string(target) }
            if let server { detail["server"] = .string(server) }
            if let arguments = params?["arguments"] { detail["argsDigest"] = .string(Catalog.digest(arguments)) }
            switch reply {
            case .error(let error):
                detail["outcome"] = .string(target != nil && server == nil ? (exists(method: method, target: target) ? "denied" : "unknown") : "error")
                detail["error"] = .string(error.message)
            case .value(let value) where value["isError"]?.boolValue == true:
                detail["outcome"] = .string("tool-error")
            default:
                detail["outcome"] = .string("ok")
            }
            record(type: "mcp.request", caller: caller, detail: detail)
        }
        return reply
    }

    private func exists(method: String, target: String?) -> Bool {
        guard let target else { return false }
        switch method {
        case "tools/call": return catalog.toolsByName[target] != nil
        case "prompts/get": return catalog.promptsByName[target] != nil
        default: return catalog.resourcesByURI[target] != nil || catalog.template(matching: target) != nil
        }
    }

    private func complete(params: JSONValue?, caller: Caller, modern: Bool) async -> Reply {
        let reference = params?["ref"]
        let view = callerView(caller)
        let empty: JSONValue = .object(["completion": .object(["values": .array([]), "hasMore": .bool(false)])])
        if reference?["type"]?.stringValue == "ref/prompt", let name = reference?["name"]?.stringValue, let item = view.prompt(named: name) {
            let forwarded = params?.setting("ref", reference?.setting("name", .string(item.upstreamName)))
            return await forward("completion/complete", params: forwarded, to: item.server, name: nil, modern: modern, onProgress: nil)
        }
        if reference?["type"]?.stringValue == "ref/resource", let uri = reference?["uri"]?.stringValue,
           let item = view.templates.lazy.map({ self.catalog.templates[$0] }).first(where: { $0.upstreamName == uri }) {
            return await forward("completion/complete", params: params, to: item.server, name: nil, modern: modern, onProgress: nil)
        }
        return .value(empty)
    }

    private func forward(_ method: String, params: JSONValue?, to server: String, name: String?, modern: Bool,
                         onProgress: (@Sendable (JSONValue) -> Void)?) async -> Reply {
        guard let upstream = upstreams.first(where: { $0.config.name == server }) else {
            return .error(RPCError(code: JSONRPC.internalError, message: "no upstream '\(server)'"))
        }
        var params = params
        // The caller's envelope is for the gateway; the upstream gets its own.
        if var meta = params?["_meta"]?.objectValue {
            for key in meta.keys where key.hasPrefix("io.modelcontextprotocol/") { meta.removeValue(forKey: key) }
            params = params?.setting("_meta", meta.isEmpty ? nil : .object(meta))
        }
        do {
            var result = try await upstream.call(method, params: params, name: name, onProgress: onProgress)
            if modern, result["resultType"] == nil { result = result.setting("resultType", .string("complete")) }
            if !modern, result["resultType"] != nil { result = result.setting("resultType", nil) }
            return .value(result)
        } catch let error as RPCError {
            return .error(error)
        } catch {
            return .error(RPCError(code: JSONRPC.internalError, message: "upstream '\(server)': \(error)"))
        }
    }

    // MARK: audit

    private func record(type: String, caller: Caller?, detail: [String: JSONValue]) {
        let text = String(decoding: JSONValue.object(detail).encoded(), as: UTF8.self)
        let event = GatewayAuditEvent(type: type, identity: caller?.identity, circuit: caller?.circuit, detail: text)
        audit.record(event)
    }
}
