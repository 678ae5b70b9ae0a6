import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import GatewayKit
import Shared

/// An upstream MCP server at a Streamable HTTP URL. Each message is a POST; a request's answer
/// comes back as JSON or as an SSE stream that may carry notifications first. In the session
/// revisions the server's `Mcp-Session-Id` is sent back on every POST, and a GET stream carries
/// the server's own messages (list changes) when the server offers one.
final class HTTPTransport: ExchangeTransport, @unchecked Sendable {
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
            self.sessionID = nil
        }
    }

    func settle(protocolVersion: String?, modern: Bool) {
        lock.withLock {
            self.protocolVersion = protocolVersion
            self.modern = modern
        }
        if !modern, protocolVersion != nil { startListening() }
    }

    func send(_ message: JSONValue, method: String?, name: String?) async throws {
        let deliver = lock.withLock { self.onMessage }
        _ = try await post(message, method: method, name: name, deadline: .now() + .hours(1)) { deliver?($0) }
    }

    func exchange(_ message: JSONValue, id: Int, method: String, name: String?, timeout: Duration,
                  onMessage: @escaping @Sendable (JSONValue) -> Void) async throws -> JSONValue {
        var answer: Result<JSONValue, RPCError>?
        do {
            try await post(message, method: method, name: name, deadline: .now() + .nanoseconds(Int64(timeout.milliseconds) * 1_000_000)) { value in
                if value["id"]?.intValue == id, answer == nil, let parsed = try? JSONRPC.Message(value) {
                    switch parsed {
                    case .response(_, let result): answer = .success(result)
                    case .error(_, let error): answer = .failure(error)
                    default: onMessage(value)
                    }
                } else {
                    onMessage(value)
                }
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw RPCError(code: JSONRPC.requestTimeout, message: "upstream '\(config.name)' did not answer \(method) within \(timeout.milliseconds) ms")
        }
        guard let answer else {
            throw RPCError(code: JSONRPC.internalError, message: "upstream '\(config.name)' answered \(method) without a JSON-RPC response")
        }
        return try answer.get()
    }

    /// One POST; every JSON-RPC message of the answer (JSON, a JSON batch, or SSE) goes to `each`.
    private func post(_ message: JSONValue, method: String?, name: String?, deadline: NIODeadline,
                      each: (JSONValue) -> Void) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        let (headers, sessionID, version, modern) = lock.withLock { (self.headers, self.sessionID, self.protocolVersion, self.modern) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        if let sessionID { request.headers.add(name: "Mcp-Session-Id", value: sessionID) }
        if let version { request.headers.add(name: "MCP-Protocol-Version", value: version) }
        if modern, let method {
            request.headers.add(name: "Mcp-Method", value: method)
            if let name { request.headers.add(name: "Mcp-Name", value: name) }
        }
        request.body = .bytes(ByteBuffer(bytes: message.encoded()))
        let response = try await client.execute(request, deadline: deadline)
        if let id = response.headers.first(name: "Mcp-Session-Id") { lock.withLock { self.sessionID = id } }
        let contentType = response.headers.first(name: "Content-Type") ?? ""
        if response.status == .accepted { return }
        if contentType.hasPrefix("text/event-stream") {
            var decoder = SSEDecoder()
            for try await chunk in response.body {
                for event in try decoder.feed(chunk.readableBytesView) {
                    if let value = try? JSONValue.parse(event) { each(value) }
                }
            }
            return
        }
        let body = try await response.body.collect(upTo: 64 << 20)
        if contentType.hasPrefix("application/json"), let value = try? JSONValue.parse(Data(body.readableBytesView)) {
            if let batch = value.arrayValue { batch.forEach(each) } else { each(value) }
            return
        }
        if response.status == .notFound, sessionID != nil {
            lock.withLock { self.sessionID = nil }
            throw RPCError(code: JSONRPC.connectionClosed, message: "the server ended its session (404)")
        }
        throw RPCError(code: JSONRPC.internalError, message: "HTTP \(response.status.code) from \(url): \(String(buffer: body).prefix(200))")
    }

    /// The GET stream for messages the server sends on its own; optional for servers (405).
    private func startListening() {
        let task = Task { [weak self] in
            var delay: Duration = .milliseconds(500)
            while !Task.isCancelled, let self {
                let (headers, sessionID, version, deliver) = self.lock.withLock { (self.headers, self.sessionID, self.protocolVersion, self.onMessage) }
                var request = HTTPClientRequest(url: self.url)
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                request.headers.add(name: "Accept", value: "text/event-stream")
                if let sessionID { request.headers.add(name: "Mcp-Session-Id", value: sessionID) }
                if let version { request.headers.add(name: "MCP-Protocol-Version", value: version) }
                do {
                    let response = try await self.client.execute(request, timeout: .seconds(24 * 3600))
                    guard response.status == .ok else { return }
                    delay = .milliseconds(500)
                    var decoder = SSEDecoder()
                    for try await chunk in response.body {
                        for event in try decoder.feed(chunk.readableBytesView) {
                            if let value = try? JSONValue.parse(event) { deliver?(value) }
                        }
                    }
                } catch {
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
        let (task, sessionID, headers) = lock.withLock { (listener, self.sessionID, self.headers) }
        task?.cancel()
        guard let sessionID else { return }
        var request = HTTPClientRequest(url: url)
        request.method = .DELETE
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Mcp-Session-Id", value: sessionID)
        _ = try? await client.execute(request, timeout: .seconds(2))
    }
}
