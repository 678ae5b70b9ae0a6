import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import GatewayKit
import Shared

/// An upstream MCP server at a Streamable HTTP URL. Each message is a POST; a request's answer
/// comes back as JSON or as an SSE stream that may carry notifications and the server's own
/// requests first. In the session revisions the server's `Mcp-Session-Id` is sent back on every
/// POST, and a GET stream carries the server's own messages (list changes) when it offers one.
///
/// Deadlines cover the whole exchange, body included: a server that sends its headers and then
/// stalls is cut off at the request's timeout like one that never answers. A failure to reach
/// the server, or a 404 for our session (the server restarted), ends the transport: the
/// supervisor marks the upstream down and connects again with a new handshake.
final class HTTPTransport: ExchangeTransport, @unchecked Sendable {
    // safe: every mutable field is behind `lock`.
    /// What one answer may hold; a larger JSON body or SSE event ends the exchange.
    static let maxBody = 64 << 20

    private let config: UpstreamConfig
    private let url: String
    private let client: HTTPClient
    private let logger: Logger
    private let lock = NSLock()
    private var sessionID: String?
    private var protocolVersion: String?
    private var modern = false
    private var headers: [(String, String)] = []
    private var onMessage: (@Sendable (JSONValue) -> Void)?
    private var onClose: (@Sendable (String) -> Void)?
    private var ended = false
    private var listener: Task<Void, Never>?

    init(config: UpstreamConfig, client: HTTPClient, logger: Logger) {
        self.config = config
        self.url = config.url ?? ""
        self.client = client
        self.logger = logger
    }

    func open(onMessage: @escaping @Sendable (JSONValue) -> Void, onClose: @escaping @Sendable (String) -> Void) async throws {
        let headers = try config.resolvedHeaders()
        lock.withLock {
            self.headers = headers
            self.onMessage = onMessage
            self.onClose = onClose
            self.sessionID = nil
            self.ended = false
        }
    }

    func settle(protocolVersion: String?, modern: Bool) {
        lock.withLock {
            self.protocolVersion = protocolVersion
            self.modern = modern
        }
        if !modern, protocolVersion != nil { startListening() }
    }

    /// The transport is over for good (unreachable, session gone): tell the supervisor once.
    private func end(_ reason: String) {
        let (onClose, task): ((@Sendable (String) -> Void)?, Task<Void, Never>?) = lock.withLock {
            guard !ended else { return (nil, nil) }
            ended = true
            return (self.onClose, listener)
        }
        task?.cancel()
        onClose?(reason)
    }

    func send(_ message: JSONValue, method: String?, name: String?) async throws {
        let deliver = lock.withLock { self.onMessage }
        _ = try await Self.withDeadline(config.timeout) {
            try await self.post(message, method: method, name: name) { deliver?($0) }
        }
    }

    func exchange(_ message: JSONValue, id: Int, method: String, name: String?, headers: [(String, String)], timeout: Duration,
                  onMessage: @escaping @Sendable (JSONValue) -> Void) async throws -> JSONValue {
        let answer = Locked<Result<JSONValue, RPCError>?>(nil)
        let finished = try await Self.withDeadline(timeout) {
            try await self.post(message, method: method, name: name, extraHeaders: headers) { value in
                if value["id"]?.intValue == id, answer.current == nil, let parsed = try? JSONRPC.Message(value) {
                    switch parsed {
                    case .response(_, let result): answer.withLock { $0 = .success(result) }
                    case .error(_, let error): answer.withLock { $0 = .failure(error) }
                    default: onMessage(value)
                    }
                } else {
                    onMessage(value)
                }
            }
        }
        guard finished else {
            throw RPCError(code: JSONRPC.requestTimeout, message: "upstream '\(config.name)' did not answer \(method) within \(timeout.milliseconds) ms")
        }
        guard let result = answer.current else {
            throw RPCError(code: JSONRPC.internalError, message: "upstream '\(config.name)' answered \(method) without a JSON-RPC response")
        }
        return try result.get()
    }

    /// Runs `body` until it finishes (true) or `timeout` passes (false; `body` is cancelled).
    /// The deadline is an event-loop timer, not a second task sleeping it out beside `body`.
    static func withDeadline(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws -> Bool {
        let expired = Locked(false)
        let work = Task { try await body() }
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(timeout)) {
            expired.withLock { $0 = true }
            work.cancel()
        }
        defer { timer.cancel() }
        let outcome = await withTaskCancellationHandler { await work.result } onCancel: { work.cancel() }
        if expired.current { return false }
        try outcome.get()
        return true
    }

    /// One POST; every JSON-RPC message of the answer (JSON, a JSON batch, or SSE) goes to `each`.
    private func post(_ message: JSONValue, method: String?, name: String?, extraHeaders: [(String, String)] = [],
                      each: @Sendable (JSONValue) -> Void) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        let (headers, sessionID, version, modern) = lock.withLock { (self.headers, self.sessionID, self.protocolVersion, self.modern) }
        for (name, value) in headers + extraHeaders { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        if let sessionID { request.headers.add(name: "Mcp-Session-Id", value: sessionID) }
        if let version { request.headers.add(name: "MCP-Protocol-Version", value: version) }
        if modern, let method {
            request.headers.add(name: "Mcp-Method", value: method)
            if let name { request.headers.add(name: "Mcp-Name", value: name) }
        }
        request.body = .bytes(ByteBuffer(bytes: message.encoded()))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .hours(24))
        } catch {
            if Task.isCancelled { throw CancellationError() }
            end("unreachable: \(error)")
            throw RPCError(code: JSONRPC.connectionClosed, message: "upstream '\(config.name)' is unreachable")
        }
        if let id = response.headers.first(name: "Mcp-Session-Id") { lock.withLock { self.sessionID = id } }
        let contentType = response.headers.first(name: "Content-Type") ?? ""
        if response.status == .accepted { return }
        // MCP: a server that ended a session answers every request bearing its id with 404.
        if response.status == .notFound, sessionID != nil {
            end("the server no longer knows our session (404): it restarted")
            throw RPCError(code: JSONRPC.connectionClosed, message: "upstream '\(config.name)' ended its session", data: .string(Self.sessionEnded))
        }
        if response.status == .ok, contentType.hasPrefix("text/event-stream") {
            var decoder = SSEDecoder()
            for try await chunk in response.body {
                for event in try decoder.feed(chunk.readableBytesView) {
                    if let value = try? JSONValue.parse(event) { each(value) }
                }
            }
            return
        }
        let body = try await response.body.collect(upTo: Self.maxBody)
        if contentType.hasPrefix("application/json"), let value = try? JSONValue.parse(Data(body.readableBytesView)) {
            if let batch = value.arrayValue { batch.forEach(each) } else { each(value) }
            return
        }
        // The status only: an upstream's error page may name internal hosts and paths.
        logger.warning("upstream answered with an HTTP error", metadata: ["upstream": "\(config.name)", "status": "\(response.status.code)",
                                                                         "body": "\(String(buffer: body).prefix(200))"])
        throw RPCError(code: JSONRPC.internalError, message: "upstream '\(config.name)' answered HTTP \(response.status.code)")
    }

    /// The `data` of the error that means "the server forgot our session; handshake and retry".
    static let sessionEnded = "portless/session-ended"

    /// The GET stream for messages the server sends on its own; optional for servers (405).
    /// It comes back with backoff after a failure; a server that no longer knows the session
    /// ends the transport.
    private func startListening() {
        let task = Task { [weak self] in
            var delay: Duration = .milliseconds(250)
            while !Task.isCancelled, let self {
                let (headers, sessionID, version, deliver) = self.lock.withLock { (self.headers, self.sessionID, self.protocolVersion, self.onMessage) }
                var request = HTTPClientRequest(url: self.url)
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                request.headers.add(name: "Accept", value: "text/event-stream")
                if let sessionID { request.headers.add(name: "Mcp-Session-Id", value: sessionID) }
                if let version { request.headers.add(name: "MCP-Protocol-Version", value: version) }
                do {
                    let response = try await self.client.execute(request, timeout: .hours(24))
                    if response.status == .methodNotAllowed { return }  // the server offers no stream
                    if response.status == .notFound, sessionID != nil {
                        return self.end("the server no longer knows our session (404): it restarted")
                    }
                    if response.status == .ok {
                        delay = .milliseconds(250)
                        var decoder = SSEDecoder()
                        for try await chunk in response.body {
                            for event in try decoder.feed(chunk.readableBytesView) {
                                if let value = try? JSONValue.parse(event) { deliver?(value) }
                            }
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    self.logger.debug("upstream GET stream ended", metadata: ["upstream": "\(self.config.name)", "error": "\(error)"])
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            }
        }
        lock.withLock {
            listener?.cancel()
            listener = task
        }
    }

    func close() async {
        let (task, sessionID, headers) = lock.withLock {
            ended = true
            return (listener, self.sessionID, self.headers)
        }
        task?.cancel()
        guard let sessionID else { return }
        var request = HTTPClientRequest(url: url)
        request.method = .DELETE
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Mcp-Session-Id", value: sessionID)
        _ = try? await client.execute(request, timeout: .seconds(2))
    }
}
