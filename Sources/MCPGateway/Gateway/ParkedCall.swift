import Foundation
import GatewayKit
import Shared

/// A call to a handshake-era upstream, made for a stateless (2026-07-28) caller, while the
/// upstream waits for answers only the caller can give (sampling, elicitation, roots). A
/// stateless caller cannot be sent a request mid-call, so the gateway answers it with an
/// `input_required` result naming the questions and a `requestState` naming this call; the
/// caller's retry carries the answers, which resume the call where it waits.
///
/// A parked call belongs to the caller that made it: another identity's retry cannot resume it.
final class ParkedCall: Sendable {
    static let statePrefix = "portless-parked:"

    enum Outcome: Sendable {
        case done(MCPGateway.Reply)
        /// The questions the caller must answer now, by key.
        case questions([String: JSONValue])
    }

    private struct State {
        var open: [String: (request: JSONValue, continuation: CheckedContinuation<Result<JSONValue, RPCError>, Never>)] = [:]
        var asked: Set<String> = []
        var result: MCPGateway.Reply?
        var waiter: CheckedContinuation<Outcome, Never>?
        var nextKey = 1
        var task: Task<Void, Never>?
        var parkedAt: ContinuousClock.Instant?
    }

    let id = UUID().uuidString
    let identity: String
    let method: String
    let target: String?
    private let state = Locked(State())

    /// How long the call waits for the caller to come back with its answers.
    let limit: Duration

    init(identity: String, method: String, target: String?, limit: Duration) {
        self.identity = identity
        self.method = method
        self.target = target
        self.limit = limit
    }

    /// The caller was just handed questions: the wait for its retry starts now.
    func parkedNow() { state.withLock { $0.parkedAt = .now } }

    var isExpired: Bool { state.withLock { $0.parkedAt.map { ContinuousClock.now - $0 > limit } ?? false } }

    var requestState: String { Self.statePrefix + id }

    func run(_ body: @escaping @Sendable () async -> MCPGateway.Reply) {
        let task = Task { [weak self] in
            let reply = await body()
            self?.complete(reply)
        }
        state.withLock { $0.task = task }
    }

    /// The upstream asks the caller something: waits until the caller's retry answers it.
    func ask(_ method: String, params: JSONValue?) async -> Result<JSONValue, RPCError> {
        await withCheckedContinuation { continuation in
            let waiter: CheckedContinuation<Outcome, Never>? = state.withLock { state in
                let key = "q\(state.nextKey)"
                state.nextKey += 1
                var request: [String: JSONValue] = ["method": .string(method)]
                if let params { request["params"] = params }
                state.open[key] = (.object(request), continuation)
                return state.waiter
            }
            if waiter != nil { signal() }
        }
    }

    private func complete(_ reply: MCPGateway.Reply) {
        state.withLock { $0.result = reply }
        signal()
    }

    /// Hands the waiter what is ready: the result, or the questions not yet put to the caller.
    private func signal() {
        let (waiter, outcome): (CheckedContinuation<Outcome, Never>?, Outcome?) = state.withLock { state in
            guard let waiter = state.waiter else { return (nil, nil) }
            if let result = state.result {
                state.waiter = nil
                return (waiter, .done(result))
            }
            let fresh = state.open.filter { !state.asked.contains($0.key) }
            guard !fresh.isEmpty else { return (nil, nil) }
            state.asked.formUnion(fresh.keys)
            state.waiter = nil
            return (waiter, .questions(fresh.mapValues(\.request)))
        }
        if let waiter, let outcome { waiter.resume(returning: outcome) }
    }

    /// Waits for the result or for questions for the caller.
    func next() async -> Outcome {
        await withCheckedContinuation { continuation in
            state.withLock { $0.waiter = continuation }
            signal()
        }
    }

    /// The caller's answers, by the keys it was given; questions it left unanswered get an error.
    func answer(_ responses: [String: JSONValue]) {
        let resumed: [(CheckedContinuation<Result<JSONValue, RPCError>, Never>, Result<JSONValue, RPCError>)] = state.withLock { state in
            var resumed: [(CheckedContinuation<Result<JSONValue, RPCError>, Never>, Result<JSONValue, RPCError>)] = []
            for key in state.asked {
                guard let entry = state.open.removeValue(forKey: key) else { continue }
                if let response = responses[key] {
                    resumed.append((entry.continuation, .success(response)))
                } else {
                    resumed.append((entry.continuation, .failure(RPCError(code: JSONRPC.invalidParams, message: "the caller did not answer \(key)"))))
                }
            }
            state.asked.removeAll()
            return resumed
        }
        for (continuation, result) in resumed { continuation.resume(returning: result) }
    }

    /// The caller never came back: every open question fails and the upstream call is cancelled.
    func abandon() {
        let (open, task) = state.withLock { state in
            defer { state.open.removeAll() }
            return (Array(state.open.values), state.task)
        }
        for entry in open {
            entry.continuation.resume(returning: .failure(RPCError(code: JSONRPC.requestTimeout, message: "the caller did not come back with its answers")))
        }
        task?.cancel()
    }
}
