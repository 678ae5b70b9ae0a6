import Foundation
import GatewayKit
import Shared

/// Requests the gateway sends a caller on an upstream server's behalf (sampling, elicitation,
/// roots) over the caller's request stream, and the caller's answers, which come back as POSTed
/// JSON-RPC responses. Ids are minted here, so an upstream's ids never reach a caller and a
/// caller can answer only what was asked of its own session.
final class CallerRequests: Sendable {
    private struct Waiting {
        let session: String
        let continuation: CheckedContinuation<Result<JSONValue, RPCError>, Never>
    }
    private let waiting = Locked<[String: Waiting]>([:])

    /// The client capability each relayed method needs (MCP: a server must not send a request
    /// its client did not declare).
    static let capability = ["sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"]

    /// Whether a client that declared `capabilities` may be sent `method`.
    static func permits(_ method: String, capabilities: JSONValue) -> Bool {
        guard let needed = capability[method] else { return false }
        return capabilities[needed] != nil
    }

    static func refusal(_ method: String) -> RPCError {
        guard let needed = capability[method] else {
            return RPCError(code: JSONRPC.methodNotFound, message: "the Portless gateway does not relay \(method) to callers")
        }
        return RPCError(code: JSONRPC.methodNotFound, message: "the calling client does not support \(needed) (\(method))")
    }

    /// Sends `method` to the caller over `exchange` and waits (at most `timeout`) for the answer.
    func ask(session: String, method: String, params: JSONValue?, over exchange: DownstreamExchange,
             timeout: Duration) async -> Result<JSONValue, RPCError> {
        let id = "portless-\(UUID().uuidString)"
        let message = JSONRPC.request(id: .string(id), method: method, params: params).encoded()
        let expiry = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.resolve(id, .failure(RPCError(code: JSONRPC.requestTimeout, message: "the caller did not answer \(method) within \(timeout.milliseconds) ms")))
        }
        defer { expiry.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiting.withLock { $0[id] = Waiting(session: session, continuation: continuation) }
                if !exchange.send(message) {
                    resolve(id, .failure(RPCError(code: JSONRPC.internalError, message: "the caller's request is not a stream: \(method) cannot reach it")))
                }
            }
        } onCancel: {
            resolve(id, .failure(RPCError(code: JSONRPC.requestTimeout, message: "the caller's request ended")))
        }
    }

    /// A response a caller POSTed; false when it answers nothing this session was asked.
    @discardableResult
    func answered(session: String, id: JSONValue, result: Result<JSONValue, RPCError>) -> Bool {
        guard let key = id.stringValue else { return false }
        let owned = waiting.withLock { $0[key]?.session == session }
        guard owned else { return false }
        resolve(key, result)
        return true
    }

    private func resolve(_ id: String, _ result: Result<JSONValue, RPCError>) {
        waiting.withLock { $0.removeValue(forKey: id) }?.continuation.resume(returning: result)
    }
}
