import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import GatewayKit
import MCPGateway
import Shared

/// `portless-tunnel mcp-stdio`: an MCP server on stdin/stdout for desktop MCP clients, whose
/// every message goes to an MCP gateway service over the overlay. The circuit starts at a unix
/// socket in a private directory of this process, so nothing listens on a port anywhere.
///
/// Messages are relayed as they are (either protocol generation): each client message becomes a
/// POST, each message of the answer (JSON or SSE) a line on stdout; the session's GET stream
/// carries the gateway's own notifications (list changes) once a session exists.
///
/// With `onBehalfOf`, every request carries the token in that file (read again each time, so a
/// refreshed token is used at once) as the person the client's agent acts for.
final class MCPStdioBridge: @unchecked Sendable {
    private let url: String
    private let client = HTTPClient.shared
    private let logger: Logger
    private let onBehalfOf: String?
    private let output = NSLock()
    private let state = Locked<(session: String?, version: String?, listening: Bool)>((nil, nil, false))

    init(socketPath: String, onBehalfOf: String? = nil, logger: Logger) {
        let encoded = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath
        url = "http+unix://\(encoded)/mcp"
        self.onBehalfOf = onBehalfOf
        self.logger = logger
    }

    /// `Authorization: Bearer <the person's token>`, when a token file was given and is readable.
    private func addPerson(to request: inout HTTPClientRequest) {
        guard let onBehalfOf else { return }
        do {
            let token = try Files.read(onBehalfOf).trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        } catch {
            logger.error("the person's token file cannot be read; the request goes without it", metadata: ["file": "\(onBehalfOf)", "error": "\(error)"])
        }
    }

    /// Reads stdin until it closes, then calls `done`.
    func run(done: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            while let line = readLine(strippingNewline: true) {
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                let data = Data(line.utf8)
                Task { await self.relay(data) }
            }
            done()
        }
        thread.name = "mcp-stdio"
        thread.start()
    }

    private func relay(_ body: Data) async {
        let message = try? JSONValue.parse(body)
        let method = message?["method"]?.stringValue
        let id = message?["id"]
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        let (session, version, _) = state.current
        if let session { request.headers.add(name: "Mcp-Session-Id", value: session) }
        let metaVersion = message?["params"]?["_meta"]?["io.modelcontextprotocol/protocolVersion"]?.stringValue
        if let headerVersion = metaVersion ?? version { request.headers.add(name: "MCP-Protocol-Version", value: headerVersion) }
        if metaVersion != nil, let method {
            request.headers.add(name: "Mcp-Method", value: method)
            let key = ["tools/call": "name", "prompts/get": "name", "resources/read": "uri"][method]
            if let key, let name = message?["params"]?[key]?.stringValue { request.headers.add(name: "Mcp-Name", value: name) }
        }
        addPerson(to: &request)
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await send(request)
            if method == "initialize", let session = response.headers.first(name: "Mcp-Session-Id") {
                state.withLock { $0.session = session }
            }
            if response.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") == true {
                var decoder = SSEDecoder()
                for try await chunk in response.body {
                    for event in try decoder.feed(chunk.readableBytesView) { write(event) }
                }
            } else {
                var data = Data((try await response.body.collect(upTo: 64 << 20)).readableBytesView)
                // A refusal before the request was read (the person's token) names no id: it is this request's.
                if response.status.code >= 400, let id, var refusal = try? JSONValue.parse(data), refusal["id"] == .null {
                    refusal = refusal.setting("id", id)
                    data = refusal.encoded()
                }
                if !data.isEmpty { write(data) }
                if method == "initialize", let version = (try? JSONValue.parse(data))?["result"]?["protocolVersion"]?.stringValue {
                    state.withLock { $0.version = version }
                }
            }
            if method == "notifications/initialized" { startListening() }
        } catch {
            guard let id else { return }
            let failure = JSONRPC.response(id: id, error: RPCError(code: JSONRPC.connectionClosed,
                message: "the MCP gateway is unreachable over the overlay: \(error)"))
            write(failure.encoded())
        }
    }

    /// The overlay may still be connecting when the client's first message arrives: a refused
    /// circuit is retried for a while before the client is told.
    private func send(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let deadline = ContinuousClock.now + .seconds(15)
        var delay: Duration = .milliseconds(100)
        while true {
            do { return try await client.execute(request, timeout: .hours(24)) } catch {
                guard ContinuousClock.now + delay < deadline else { throw error }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    private func startListening() {
        let start: Bool = state.withLock { state in
            guard !state.listening, state.session != nil else { return false }
            state.listening = true
            return true
        }
        guard start else { return }
        Task {
            while true {
                let (session, version, _) = state.current
                var request = HTTPClientRequest(url: url)
                request.headers.add(name: "Accept", value: "text/event-stream")
                addPerson(to: &request)
                if let session { request.headers.add(name: "Mcp-Session-Id", value: session) }
                if let version { request.headers.add(name: "MCP-Protocol-Version", value: version) }
                do {
                    let response = try await client.execute(request, timeout: .hours(24))
                    guard response.status == .ok else { return }
                    var decoder = SSEDecoder()
                    for try await chunk in response.body {
                        for event in try decoder.feed(chunk.readableBytesView) { write(event) }
                    }
                } catch {
                    logger.debug("gateway stream ended", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func write(_ message: Data) {
        var line = message
        line.append(UInt8(ascii: "\n"))
        output.withLock { FileHandle.standardOutput.write(line) }
    }
}
