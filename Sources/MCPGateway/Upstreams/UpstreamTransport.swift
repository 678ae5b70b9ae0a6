import GatewayKit
import Shared

/// Carries JSON-RPC messages to and from one upstream MCP server. Messages from the server
/// (responses, notifications, its own requests) arrive through `onMessage`, in order.
protocol UpstreamTransport: AnyObject, Sendable {
    /// Opens the transport; `onClose` is called once when it ends for good (process exited,
    /// stream closed), with the reason.
    func open(onMessage: @escaping @Sendable (JSONValue) -> Void, onClose: @escaping @Sendable (String) -> Void) async throws
    /// Sends one message. `method` and `name` are for transports that mirror them in headers.
    func send(_ message: JSONValue, method: String?, name: String?) async throws
    /// The protocol version the session settled on, for transports that send it in a header.
    func settle(protocolVersion: String?, modern: Bool)
    func close() async
}

/// A transport whose every request gets its answer on its own exchange (Streamable HTTP): the
/// client awaits it directly instead of correlating it with a pending request.
protocol ExchangeTransport: UpstreamTransport {
    /// Sends request `id` and returns its result; other messages of the exchange (progress,
    /// logs) go to `onMessage` as they arrive.
    func exchange(_ message: JSONValue, id: Int, method: String, name: String?, headers: [(String, String)], timeout: Duration,
                  onMessage: @escaping @Sendable (JSONValue) -> Void) async throws -> JSONValue
}
