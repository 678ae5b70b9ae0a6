import Foundation
import Logging
import GatewayKit
import Shared

/// A JSON-RPC client over one upstream transport: correlates responses with requests, applies
/// timeouts and cancellation, rewrites progress tokens so that callers sharing the upstream
/// never see each other's progress, and answers the few requests a server may send a client.
final class RPCClient: Sendable {
    typealias NotificationHandler = @Sendable (_ method: String, _ params: JSONValue?) -> Void
    typealias ProgressHandler = @Sendable (_ params: JSONValue) -> Void

    private struct Pending {
        let continuation: CheckedContinuation<JSONValue, Error>
        let progressToken: String?
    }
    private struct State {
        var nextID = 1
        var pending: [Int: Pending] = [:]
        var progress: [String: (original: JSONValue, handler: ProgressHandler)] = [:]
        var closedReason: String?
    }

    let name: String
    private let transport: UpstreamTransport
    private let state = Locked(State())
    private let onNotification: NotificationHandler
    /// Set once the session is set up: `_meta` every request carries in the stateless revision.
    private let envelope = Locked<JSONValue?>(nil)

    init(name: String, transport: UpstreamTransport, onNotification: @escaping NotificationHandler) {
        self.name = name
        self.transport = transport
        self.onNotification = onNotification
    }

    func open(onClose: @escaping @Sendable (String) -> Void) async throws {
        try await transport.open(onMessage: { [weak self] in self?.receive($0) }, onClose: { [weak self] reason in
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
        envelope.withLock {
            $0 = .object([
                "io.modelcontextprotocol/protocolVersion": .string(protocolVersion),
                "io.modelcontextprotocol/clientCapabilities": .object([:]),
                "io.modelcontextprotocol/clientInfo": .object(["name": .string("portless-mcp-gateway"), "version": .string("1.0")]),
            ])
        }
        transport.settle(protocolVersion: protocolVersion, modern: true)
    }

    /// Back to the handshake revisions (the server did not answer `server/discover`).
    func useHandshake() {
        envelope.withLock { $0 = nil }
        transport.settle(protocolVersion: nil, modern: false)
    }

    func settle(protocolVersion: String) { transport.settle(protocolVersion: protocolVersion, modern: false) }

    /// Sends a request and waits for its result. Throws `RPCError` for an error response, a
    /// timeout or a closed connection. Cancelling the calling task cancels the request upstream.
    func request(_ method: String, params: JSONValue?, timeout: Duration, name itemName: String? = nil,
                 onProgress: ProgressHandler? = nil) async throws -> JSONValue {
        var params = params ?? .object([:])
        var progressToken: String?
        let id: Int = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            return id
        }
        if let meta = envelope.current?.objectValue {
            var merged = params["_meta"]?.objectValue ?? [:]
            for (key, value) in meta { merged[key] = value }
            params = params.setting("_meta", .object(merged))
        }
        if let original = params["_meta"]?["progressToken"], let onProgress {
            let token = "\(name)-\(id)"
            progressToken = token
            state.withLock { $0.progress[token] = (original, onProgress) }
            var meta = params["_meta"]?.objectValue ?? [:]
            meta["progressToken"] = .string(token)
            params = params.setting("_meta", .object(meta))
        } else if params["_meta"]?["progressToken"] != nil {
            var meta = params["_meta"]?.objectValue ?? [:]
            meta.removeValue(forKey: "progressToken")
            params = params.setting("_meta", .object(meta))
        }
        let message = JSONRPC.request(id: .number(id), method: method, params: params)
        if let exchange = transport as? ExchangeTransport {
            defer { if let progressToken { state.withLock { _ = $0.progress.removeValue(forKey: progressToken) } } }
            do {
                return try await exchange.exchange(message, id: id, method: method, name: itemName, timeout: timeout) { [weak self] in self?.receive($0) }
            } catch let error as RPCError {
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
                    state.pending[id] = Pending(continuation: continuation, progressToken: progressToken)
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
            if self.fail(id, RPCError(code: JSONRPC.requestTimeout, message: "cancelled")) {
                Task { try? await self.transport.send(JSONRPC.notification("notifications/cancelled", params: .object(["requestId": .number(id)])),
                                                      method: "notifications/cancelled", name: nil) }
            }
        }
    }

    func notify(_ method: String, params: JSONValue?) async throws {
        var params = params
        if let meta = envelope.current?.objectValue {
            params = (params ?? .object([:])).setting("_meta", .object(meta))
        }
        try await transport.send(JSONRPC.notification(method, params: params), method: method, name: nil)
    }

    @discardableResult
    private func fail(_ id: Int, _ error: RPCError) -> Bool {
        let pending: Pending? = state.withLock { state in
            guard let pending = state.pending.removeValue(forKey: id) else { return nil }
            if let token = pending.progressToken { state.progress.removeValue(forKey: token) }
            return pending
        }
        pending?.continuation.resume(throwing: error)
        if let error = error as RPCError?, error.code == JSONRPC.requestTimeout, error.message != "cancelled", pending != nil {
            Task { try? await self.transport.send(JSONRPC.notification("notifications/cancelled", params: .object(["requestId": .number(id), "reason": .string("timeout")])),
                                                  method: "notifications/cancelled", name: nil) }
        }
        return pending != nil
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

    private func receive(_ value: JSONValue) {
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
        case .notification(let method, let params):
            onNotification(method, params)
        case .request(let id, let method, _):
            let reply: JSONValue
            switch method {
            case "ping": reply = JSONRPC.response(id: id, result: .object([:]))
            case "roots/list": reply = JSONRPC.response(id: id, result: .object(["roots": .array([])]))
            default: reply = JSONRPC.response(id: id, error: RPCError(code: JSONRPC.methodNotFound, message: "the Portless gateway does not serve \(method) to upstreams"))
            }
            Task { try? await transport.send(reply, method: nil, name: nil) }
        }
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
