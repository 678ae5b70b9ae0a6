import Foundation
import Logging
import GatewayKit
import Shared

/// A JSON-RPC client over one upstream transport: correlates responses with requests, applies
/// timeouts and cancellation, and hands what the server says about a request — progress, logs,
/// its own requests of the client — to that request's `RequestContext`, i.e. to the caller who
/// made it. Progress tokens are rewritten per request, so callers sharing the upstream never see
/// each other's progress.
final class RPCClient: Sendable {
    /// Notifications that concern every caller (list changes, resource updates).
    typealias NotificationHandler = @Sendable (_ method: String, _ params: JSONValue?) -> Void

    private struct Pending {
        let continuation: CheckedContinuation<JSONValue, Error>
        let progressToken: String?
        let context: RequestContext
    }
    private struct State {
        var nextID = 1
        var pending: [Int: Pending] = [:]
        /// Requests in flight on exchange transports, for attribution (their replies come back on
        /// their own exchange, so they are not in `pending`).
        var exchanges: [Int: RequestContext] = [:]
        var progress: [String: (original: JSONValue, handler: @Sendable (JSONValue) -> Void)] = [:]
        var closedReason: String?
    }

    let name: String
    private let transport: UpstreamTransport
    private let state = Locked(State())
    private let onNotification: NotificationHandler
    private let logger: Logger
    /// Set once the session is set up: the stateless revision's protocol version, sent in every
    /// request's `_meta` with the caller's capabilities.
    private let modernVersion = Locked<String?>(nil)

    init(name: String, transport: UpstreamTransport, logger: Logger, onNotification: @escaping NotificationHandler) {
        self.name = name
        self.transport = transport
        self.logger = logger
        self.onNotification = onNotification
    }

    func open(onClose: @escaping @Sendable (String) -> Void) async throws {
        try await transport.open(onMessage: { [weak self] in self?.receive($0, context: nil) }, onClose: { [weak self] reason in
            self?.failAll(reason)
            onClose(reason)
        })
    }

    func close() async {
        failAll("the gateway closed its connection to '\(name)'")
        await transport.close()
    }

    /// From now on every request carries the stateless revision's per-request `_meta`.
    func useModernEnvelope(protocolVersion: String) {
        modernVersion.withLock { $0 = protocolVersion }
        transport.settle(protocolVersion: protocolVersion, modern: true)
    }

    /// Back to the handshake revisions (the server did not answer `server/discover`).
    func useHandshake() {
        modernVersion.withLock { $0 = nil }
        transport.settle(protocolVersion: nil, modern: false)
    }

    func settle(protocolVersion: String) { transport.settle(protocolVersion: protocolVersion, modern: false) }

    /// Sends a request and waits for its result. Throws `RPCError` for an error response, a
    /// timeout or a closed connection. Cancelling the calling task cancels the request upstream.
    func request(_ method: String, params: JSONValue?, timeout: Duration, name itemName: String? = nil,
                 context: RequestContext = .gateway) async throws -> JSONValue {
        let id: Int = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        var params = params ?? .object([:])
        if let version = modernVersion.current {
            var meta = params["_meta"]?.objectValue ?? [:]
            meta["io.modelcontextprotocol/protocolVersion"] = .string(version)
            meta["io.modelcontextprotocol/clientCapabilities"] = context.clientCapabilities
            meta["io.modelcontextprotocol/clientInfo"] = .object(["name": .string("portless-mcp-gateway"), "version": .string("1.0")])
            if let level = context.logLevel { meta["io.modelcontextprotocol/logLevel"] = .string(level) }
            params = params.setting("_meta", .object(meta))
        }
        if let assertion = context.assertion {
            var meta = params["_meta"]?.objectValue ?? [:]
            meta[AssertionSigner.metaKey] = .string(assertion)
            params = params.setting("_meta", .object(meta))
        }
        if let trace = TraceContext.current {
            // The gateway's span is the upstream call's parent (W3C Trace Context in `_meta`).
            var meta = params["_meta"]?.objectValue ?? [:]
            meta["traceparent"] = .string(trace.traceparent)
            params = params.setting("_meta", .object(meta))
        }
        var progressToken: String?
        if params["_meta"]?["progressToken"] != nil {
            var meta = params["_meta"]?.objectValue ?? [:]
            if let original = meta["progressToken"], let onProgress = context.onProgress {
                let token = "\(name)-\(id)"
                progressToken = token
                state.withLock { $0.progress[token] = (original, onProgress) }
                meta["progressToken"] = .string(token)
            } else {
                meta.removeValue(forKey: "progressToken")
            }
            params = params.setting("_meta", .object(meta))
        }
        let message = JSONRPC.request(id: .number(id), method: method, params: params)
        if let exchange = transport as? ExchangeTransport {
            state.withLock { $0.exchanges[id] = context }
            defer {
                state.withLock {
                    $0.exchanges.removeValue(forKey: id)
                    if let progressToken { $0.progress.removeValue(forKey: progressToken) }
                }
            }
            do {
                let headers = context.assertion.map { [(AssertionSigner.headerName, $0)] } ?? []
                return try await exchange.exchange(message, id: id, method: method, name: itemName, headers: headers, timeout: timeout) { [weak self] in
                    self?.receive($0, context: context)
                }
            } catch let error as RPCError {
                if error.code == JSONRPC.requestTimeout { cancelUpstream(id, reason: "timeout") }
                throw error
            } catch {
                if Task.isCancelled { throw RPCError(code: JSONRPC.requestTimeout, message: "cancelled") }
                throw RPCError(code: JSONRPC.connectionClosed, message: "upstream '\(name)' is unreachable: \(error)")
            }
        }
        let timeoutTask = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.fail(id, RPCError(code: JSONRPC.requestTimeout,
                                    message: "upstream '\(self?.name ?? "")' did not answer \(method) within \(timeout.milliseconds) ms"))
        }
        defer { timeoutTask.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, Error>) in
                let closed: String? = state.withLock { state in
                    if let reason = state.closedReason { return reason }
                    state.pending[id] = Pending(continuation: continuation, progressToken: progressToken, context: context)
                    return nil
                }
                if let closed {
                    continuation.resume(throwing: RPCError(code: JSONRPC.connectionClosed, message: "upstream '\(name)' is unavailable: \(closed)"))
                    return
                }
                Task {
                    do { try await self.transport.send(message, method: method, name: itemName) } catch {
                        self.fail(id, RPCError(code: JSONRPC.connectionClosed, message: "upstream '\(self.name)' is unreachable: \(error)"))
                    }
                }
            }
        } onCancel: {
            self.fail(id, RPCError(code: JSONRPC.requestTimeout, message: "cancelled"))
        }
    }

    func notify(_ method: String, params: JSONValue?) async throws {
        var params = params
        if let version = modernVersion.current {
            var meta = params?["_meta"]?.objectValue ?? [:]
            meta["io.modelcontextprotocol/protocolVersion"] = .string(version)
            params = (params ?? .object([:])).setting("_meta", .object(meta))
        }
        try await transport.send(JSONRPC.notification(method, params: params), method: method, name: nil)
    }

    /// Ends request `id` with `error`; a timed-out or cancelled request is cancelled upstream too.
    @discardableResult
    private func fail(_ id: Int, _ error: RPCError) -> Bool {
        let pending: Pending? = state.withLock { state in
            guard let pending = state.pending.removeValue(forKey: id) else { return nil }
            if let token = pending.progressToken { state.progress.removeValue(forKey: token) }
            return pending
        }
        guard let pending else { return false }
        pending.continuation.resume(throwing: error)
        if error.code == JSONRPC.requestTimeout { cancelUpstream(id, reason: error.message == "cancelled" ? nil : "timeout") }
        return true
    }

    private func cancelUpstream(_ id: Int, reason: String?) {
        var params: [String: JSONValue] = ["requestId": .number(id)]
        if let reason { params["reason"] = .string(reason) }
        Task { try? await self.notify("notifications/cancelled", params: .object(params)) }
    }

    private func failAll(_ reason: String) {
        let pending: [Pending] = state.withLock { state in
            state.closedReason = reason
            let all = Array(state.pending.values)
            state.pending.removeAll()
            state.progress.removeAll()
            return all
        }
        for request in pending {
            request.continuation.resume(throwing: RPCError(code: JSONRPC.connectionClosed, message: "upstream '\(name)' closed: \(reason)"))
        }
    }

    /// The context a message with no request of its own belongs to: the one owner of every
    /// request in flight, or nobody.
    private func soleOwnerContext() -> RequestContext? {
        state.withLock { state in
            let contexts = state.pending.values.map(\.context) + state.exchanges.values
            guard let first = contexts.first, contexts.allSatisfy({ $0.owner == first.owner }) else { return nil }
            return first
        }
    }

    /// A message from the server; `context` is the request whose exchange carried it, if any.
    private func receive(_ value: JSONValue, context: RequestContext?) {
        guard let message = try? JSONRPC.Message(value) else { return }
        switch message {
        case .response(let id, let result):
            resolve(id, .success(result))
        case .error(let id, let error):
            resolve(id, .failure(error))
        case .notification("notifications/progress", let params?):
            guard let token = params["progressToken"]?.stringValue,
                  let entry = state.withLock({ $0.progress[token] }) else { return }
            entry.handler(params.setting("progressToken", entry.original))
        case .notification("notifications/message", let params?):
            guard let owner = context ?? soleOwnerContext(), let onLog = owner.onLog else {
                logger.debug("upstream log message tied to no single caller; not relayed", metadata: ["upstream": "\(name)"])
                return
            }
            onLog(params)
        case .notification(let method, let params):
            onNotification(method, params)
        case .request(let id, let method, let params):
            if method == "ping" { return reply(JSONRPC.response(id: id, result: .object([:]))) }
            guard let owner = context ?? soleOwnerContext(), let ask = owner.onServerRequest else {
                return reply(JSONRPC.response(id: id, error: RPCError(code: JSONRPC.invalidRequest,
                    message: "the Portless gateway cannot tell which caller \(method) is for: send it during that caller's request")))
            }
            Task {
                let answer = await ask(method, params)
                switch answer {
                case .success(let result): self.reply(JSONRPC.response(id: id, result: result))
                case .failure(let error): self.reply(JSONRPC.response(id: id, error: error))
                }
            }
        }
    }

    private func reply(_ message: JSONValue) {
        Task { try? await transport.send(message, method: nil, name: nil) }
    }

    private func resolve(_ id: JSONValue, _ result: Result<JSONValue, RPCError>) {
        guard let number = id.intValue else { return }
        let pending: Pending? = state.withLock { state in
            guard let pending = state.pending.removeValue(forKey: number) else { return nil }
            if let token = pending.progressToken { state.progress.removeValue(forKey: token) }
            return pending
        }
        pending?.continuation.resume(with: result.mapError { $0 as Error })
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
