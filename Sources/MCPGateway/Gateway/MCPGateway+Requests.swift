import Foundation
import GatewayKit
import Shared

/// The caller's side of one request: who asks, in which session and revision, what its client
/// can answer, and where what comes before the result goes.
struct Downstream: Sendable {
    let caller: Caller
    /// The session (handshake revisions); nil for a stateless caller.
    let session: String?
    let modern: Bool
    /// What the client declared it can answer (sampling, elicitation, roots).
    let capabilities: JSONValue
    /// The session's `logging/setLevel`, or a stateless request's `logLevel` opt-in.
    let logLevel: LogLevel?
    let exchange: DownstreamExchange?

    var owner: String { session ?? "\(caller.identity)#\(caller.circuit.map(String.init) ?? "-")" }

    /// A caller that takes no stream and asks nothing of upstreams (tests, internal calls).
    static func plain(_ caller: Caller, modern: Bool = false) -> Downstream {
        Downstream(caller: caller, session: nil, modern: modern, capabilities: .object([:]), logLevel: nil, exchange: nil)
    }
}

extension MCPGateway {
    enum Reply: Sendable {
        case value(JSONValue)
        /// The `result` object, already encoded.
        case encoded(Data)
        case error(RPCError)
    }

    /// At most this many `input_required` rounds are driven for a handshake-era caller.
    static let maxInputRounds = 10
    /// Methods whose result may be `input_required` (2026-07-28).
    static let inputRequiredMethods: Set<String> = ["tools/call", "prompts/get", "resources/read"]

    func capabilities() -> JSONValue {
        .object([
            "tools": .object(["listChanged": .bool(true)]),
            "resources": .object(["subscribe": .bool(true), "listChanged": .bool(true)]),
            "prompts": .object(["listChanged": .bool(true)]),
            "logging": .object([:]),
            "completions": .object([:]),
        ])
    }

    var instructions: String {
        "Portless MCP gateway for '\(service)': tools of several internal servers, named <server>\(config.separator ?? "__")<tool>."
    }

    /// Serves one request for `downstream`'s caller.
    func handle(method: String, params: JSONValue?, downstream: Downstream) async -> Reply {
        if method != "ping" {
            if !isReady { await awaitReady() }
            await awaitView()
        }
        let caller = downstream.caller
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
                                                              modern: downstream.modern, status: statusJSON))
            } catch let error as RPCError { reply = .error(error) } catch { reply = .error(RPCError(code: JSONRPC.internalError, message: "\(error)")) }
        case "tools/call":
            let name = params?["name"]?.stringValue ?? ""
            target = name
            if let item = callerView(caller).tool(named: name) {
                server = item.server
                reply = await forward(method, params: params?.setting("name", .string(item.upstreamName)), to: item.server,
                                      name: item.upstreamName, downstream: downstream)
            } else {
                reply = .error(RPCError(code: JSONRPC.invalidParams, message: "Unknown tool: \(name)"))
            }
        case "prompts/get":
            let name = params?["name"]?.stringValue ?? ""
            target = name
            if let item = callerView(caller).prompt(named: name) {
                server = item.server
                reply = await forward(method, params: params?.setting("name", .string(item.upstreamName)), to: item.server,
                                      name: item.upstreamName, downstream: downstream)
            } else {
                reply = .error(RPCError(code: JSONRPC.invalidParams, message: "Unknown prompt: \(name)"))
            }
        case "resources/read":
            let uri = params?["uri"]?.stringValue ?? ""
            target = uri
            if let normalized = ResourceURI.normalized(uri), let item = callerView(caller).resource(uri: normalized) {
                server = item.server
                target = normalized
                reply = await forward(method, params: params?.setting("uri", .string(normalized)), to: item.server, name: normalized, downstream: downstream)
            } else {
                reply = .error(Self.resourceNotFound(uri))
            }
        case "resources/subscribe", "resources/unsubscribe":
            let uri = params?["uri"]?.stringValue ?? ""
            target = uri
            reply = await subscription(method == "resources/subscribe", uri: uri, downstream: downstream)
        case "completion/complete":
            reply = await complete(params: params, downstream: downstream)
        case "logging/setLevel":
            reply = await setLogLevel(params?["level"]?.stringValue, downstream: downstream)
        default:
            reply = .error(RPCError(code: JSONRPC.methodNotFound, message: "Method not found: \(method)"))
        }
        if method != "ping" { audit(method: method, params: params, downstream: downstream, target: target, server: server, reply: reply, started: started) }
        return reply
    }

    static func resourceNotFound(_ uri: String) -> RPCError {
        RPCError(code: JSONRPC.resourceNotFound, message: "Resource not found", data: .object(["uri": .string(uri)]))
    }

    private func audit(method: String, params: JSONValue?, downstream: Downstream, target: String?, server: String?, reply: Reply, started: ContinuousClock.Instant) {
        let elapsed = (ContinuousClock.now - started).components
        let microseconds = elapsed.seconds * 1_000_000 + elapsed.attoseconds / 1_000_000_000_000
        var detail: [String: JSONValue] = ["method": .string(method), "latencyMs": .number(Double(microseconds) / 1000)]
        if let session = downstream.session { detail["session"] = .string(session) }
        if let trace = TraceContext.current { detail["traceId"] = .string(trace.traceID) }
        if let target { detail["target"] = .string(target) }
        if let server { detail["server"] = .string(server) }
        if let arguments = params?["arguments"] { detail["argsDigest"] = .string(Catalog.digest(arguments)) }
        switch reply {
        case .error(let error):
            detail["outcome"] = .string(target != nil && server == nil ? (exists(method: method, target: target) ? "denied" : "unknown") : "error")
            detail["error"] = .string(error.message)
        case .value(let value) where value["isError"]?.boolValue == true:
            detail["outcome"] = .string("tool-error")
        case .value(let value) where value["resultType"]?.stringValue == "input_required":
            detail["outcome"] = .string("input-required")
        default:
            detail["outcome"] = .string("ok")
        }
        record(type: "mcp.request", caller: downstream.caller, detail: detail)
    }

    private func exists(method: String, target: String?) -> Bool {
        guard let target else { return false }
        switch method {
        case "tools/call": return catalog.toolsByName[target] != nil
        case "prompts/get": return catalog.promptsByName[target] != nil
        default:
            let uri = ResourceURI.normalized(target) ?? target
            return catalog.resourcesByURI[uri] != nil || catalog.template(matching: uri) != nil
        }
    }

    private func subscription(_ subscribe: Bool, uri: String, downstream: Downstream) async -> Reply {
        guard let session = downstream.session else {
            return .error(RPCError(code: JSONRPC.methodNotFound, message: "Method not found: use subscriptions/listen with resourceSubscriptions (2026-07-28)"))
        }
        guard let normalized = ResourceURI.normalized(uri), callerView(downstream.caller).resource(uri: normalized) != nil else {
            return .error(Self.resourceNotFound(uri))
        }
        if subscribe {
            if let error = await subscribeUpstream(normalized, for: downstream.caller) { return .error(error) }
            sessions[session]?.subscriptions.insert(normalized)
        } else {
            sessions[session]?.subscriptions.remove(normalized)
        }
        return .value(.object([:]))
    }

    private func setLogLevel(_ level: String?, downstream: Downstream) async -> Reply {
        guard let level, let parsed = LogLevel(rawValue: level) else {
            return .error(RPCError(code: JSONRPC.invalidParams, message: "level must be one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        if let session = downstream.session {
            sessions[session]?.logLevel = parsed
            await updateUpstreamLogLevel()
        }
        return .value(.object([:]))
    }

    private func complete(params: JSONValue?, downstream: Downstream) async -> Reply {
        let reference = params?["ref"]
        let view = callerView(downstream.caller)
        let empty: JSONValue = .object(["completion": .object(["values": .array([]), "hasMore": .bool(false)])])
        if reference?["type"]?.stringValue == "ref/prompt", let name = reference?["name"]?.stringValue, let item = view.prompt(named: name) {
            let forwarded = params?.setting("ref", reference?.setting("name", .string(item.upstreamName)))
            return await forward("completion/complete", params: forwarded, to: item.server, name: nil, downstream: downstream)
        }
        if reference?["type"]?.stringValue == "ref/resource", let uri = reference?["uri"]?.stringValue,
           let item = view.templates.lazy.map({ self.catalog.templates[$0] }).first(where: { $0.upstreamName == uri }) {
            return await forward("completion/complete", params: params, to: item.server, name: nil, downstream: downstream)
        }
        return .value(empty)
    }

    // MARK: forwarding

    /// Sends a caller's request to the upstream that serves it, relaying what the upstream asks
    /// of the caller in whichever way the two revisions allow.
    func forward(_ method: String, params: JSONValue?, to server: String, name: String?, downstream: Downstream) async -> Reply {
        guard let upstream = upstreams[server] else {
            return .error(RPCError(code: JSONRPC.internalError, message: "no upstream '\(server)'"))
        }
        var params = params
        // The caller's envelope is for the gateway; the upstream gets its own.
        if var meta = params?["_meta"]?.objectValue {
            for key in meta.keys where key.hasPrefix("io.modelcontextprotocol/") { meta.removeValue(forKey: key) }
            params = params?.setting("_meta", meta.isEmpty ? nil : .object(meta))
        }
        // A stateless caller comes back with answers for a call parked here.
        if downstream.modern, let state = params?["requestState"]?.stringValue, state.hasPrefix(ParkedCall.statePrefix) {
            let id = String(state.dropFirst(ParkedCall.statePrefix.count))
            guard let call = parked[id], call.identity == downstream.caller.partyKey, call.method == method, call.target == name else {
                return .error(RPCError(code: JSONRPC.invalidParams, message: "requestState is unknown or expired: call again without it"))
            }
            parked.removeValue(forKey: id)
            call.answer(params?["inputResponses"]?.objectValue ?? [:])
            return await settle(call)
        }
        var context = Self.context(for: downstream)
        context.assertion = assertions?.mint(for: downstream.caller, audience: upstream.config.audience ?? upstream.config.name,
                                             service: service, request: UUID().uuidString)
        if downstream.modern, await !upstream.isModern, Self.inputRequiredMethods.contains(method) {
            // A handshake-era upstream asks mid-call; a stateless caller can only be asked by an
            // `input_required` result: the call waits here for the caller's retry.
            let call = ParkedCall(identity: downstream.caller.partyKey, method: method, target: name, limit: upstream.config.timeout)
            let capabilities = downstream.capabilities
            context.onServerRequest = { method, params in
                guard CallerRequests.permits(method, capabilities: capabilities) else { return .failure(CallerRequests.refusal(method)) }
                return await call.ask(method, params: params)
            }
            let request = params
            let parkedContext = context
            call.run { [weak self] in
                guard let self else { return .error(RPCError(code: JSONRPC.internalError, message: "gateway stopped")) }
                return await self.callUpstream(upstream, method, params: request, name: name, context: parkedContext, downstream: downstream)
            }
            return await settle(call)
        }
        if !downstream.modern {
            let requests = callerRequests
            context.onServerRequest = { method, params in
                await Self.ask(downstream, method, params: params, requests: requests, timeout: upstream.config.timeout)
            }
        }
        return await callUpstream(upstream, method, params: params, name: name, context: context, downstream: downstream)
    }

    /// Waits for a parked call's result, or hands its questions to the caller.
    private func settle(_ call: ParkedCall) async -> Reply {
        let outcome = await withTaskCancellationHandler { await call.next() } onCancel: { call.abandon() }
        switch outcome {
        case .done(let reply):
            return reply
        case .questions(let questions):
            call.parkedNow()
            parked[call.id] = call
            return .value(.object(["resultType": .string("input_required"), "inputRequests": .object(questions),
                                   "requestState": .string(call.requestState)]))
        }
    }

    private func callUpstream(_ upstream: Upstream, _ method: String, params: JSONValue?, name: String?, context: RequestContext,
                              downstream: Downstream) async -> Reply {
        do {
            var result = try await upstream.call(method, params: params, name: name, context: context)
            // A stateless upstream asks for input; a handshake-era caller is asked here instead.
            var rounds = 0
            while !downstream.modern, result["resultType"]?.stringValue == "input_required" {
                rounds += 1
                guard rounds <= Self.maxInputRounds else {
                    return .error(RPCError(code: JSONRPC.internalError, message: "upstream '\(upstream.config.name)' asked for input more than \(Self.maxInputRounds) times"))
                }
                var responses: [String: JSONValue] = [:]
                for (key, request) in result["inputRequests"]?.objectValue ?? [:] {
                    guard let asked = request["method"]?.stringValue else { continue }
                    switch await Self.ask(downstream, asked, params: request["params"], requests: callerRequests, timeout: upstream.config.timeout) {
                    case .success(let answer): responses[key] = answer
                    case .failure(let error): return .error(error)
                    }
                }
                if responses.isEmpty { try await Task.sleep(for: .milliseconds(50)) }  // state only: the server is working
                var retry = (params ?? .object([:])).setting("requestState", result["requestState"])
                retry = retry.setting("inputResponses", responses.isEmpty ? nil : .object(responses))
                result = try await upstream.call(method, params: retry, name: name, context: context)
            }
            if downstream.modern, result["resultType"] == nil { result = result.setting("resultType", .string("complete")) }
            if !downstream.modern, result["resultType"] != nil { result = result.setting("resultType", nil) }
            return .value(result)
        } catch let error as RPCError {
            return .error(error)
        } catch {
            return .error(RPCError(code: JSONRPC.internalError, message: "upstream '\(upstream.config.name)': \(error)"))
        }
    }

    /// Asks a handshake-era caller something on an upstream's behalf, over its request's stream.
    static func ask(_ downstream: Downstream, _ method: String, params: JSONValue?, requests: CallerRequests,
                    timeout: Duration) async -> Result<JSONValue, RPCError> {
        guard CallerRequests.permits(method, capabilities: downstream.capabilities) else { return .failure(CallerRequests.refusal(method)) }
        guard let session = downstream.session, let exchange = downstream.exchange, exchange.canStream else {
            return .failure(RPCError(code: JSONRPC.internalError, message: "the caller's request takes no stream: \(method) cannot reach it"))
        }
        return await requests.ask(session: session, method: method, params: params, over: exchange, timeout: timeout)
    }

    /// What the upstream may send back about this request, bound to this caller.
    static func context(for downstream: Downstream) -> RequestContext {
        var context = RequestContext(owner: downstream.owner)
        context.clientCapabilities = downstream.capabilities
        if downstream.modern { context.logLevel = downstream.logLevel?.rawValue }
        if let exchange = downstream.exchange {
            context.onProgress = { progress in
                exchange.send(JSONRPC.notification("notifications/progress", params: progress).encoded())
            }
            let minimum = downstream.logLevel
            let optedIn = !downstream.modern || minimum != nil
            context.onLog = { params in
                guard optedIn, LogLevel.passes(params, minimum: minimum) else { return }
                exchange.send(JSONRPC.notification("notifications/message", params: params).encoded())
            }
        }
        return context
    }
}
