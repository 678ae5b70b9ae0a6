import Foundation
import Logging
import Shared

/// The tunneler's client-API connection to the controller: mTLS, an API session, then service
/// listings and service sessions. Redials with backoff. Loop-confined.
final class ControllerClient {
    private let loop: EventLoop
    private let address: SocketAddress
    private let context: TLSContext
    private let logger: Logger
    private var control: ControlPeer?
    private var apiSession: String?
    private var apiSessionExpires = Date.distantPast
    private var backoffMs: UInt64 = 250

    /// After each (re)connection with a fresh API session.
    var onReady: (() -> Void)?

    init(loop: EventLoop, address: SocketAddress, context: TLSContext, logger: Logger) {
        self.loop = loop
        self.address = address
        self.context = context
        self.logger = logger
    }

    func start() { dial() }

    func listServices(_ completion: @escaping (Result<([ServiceGrant], [RouterEndpoint]), Error>) -> Void) {
        call({ .listServices(apiSession: $0) }) { result in
            completion(result.flatMap { message in
                guard case .services(let grants, let routers) = message else { return .failure(ControlError.unexpectedReply("\(message)")) }
                return .success((grants, routers))
            })
        }
    }

    func createSession(service: String, type: SessionType, _ completion: @escaping (Result<String, Error>) -> Void) {
        call({ .createSession(apiSession: $0, service: service, type: type) }) { result in
            completion(result.flatMap { message in
                guard case .session(let token) = message else { return .failure(ControlError.unexpectedReply("\(message)")) }
                return .success(token)
            })
        }
    }

    /// What the gateway hosting `service` shows each caller; nil when still `known`.
    func gatewayView(service: String, known: String?, _ completion: @escaping (Result<GatewayView?, Error>) -> Void) {
        call({ .gatewayView(apiSession: $0, service: service, known: known) }) { result in
            completion(result.flatMap { message in
                switch message {
                case .gatewayViewIs(let view): return .success(view)
                case .unchanged: return .success(nil)
                default: return .failure(ControlError.unexpectedReply("\(message)"))
                }
            })
        }
    }

    func reportToolDefinitions(service: String, hashes: [String: String], _ completion: @escaping (Result<Void, Error>) -> Void) {
        call({ .reportToolDefinitions(apiSession: $0, service: service, hashes: hashes) }) { completion($0.map { _ in () }) }
    }

    func publishAssertionKey(_ jwk: JSONValue, _ completion: @escaping (Result<Void, Error>) -> Void) {
        call({ .publishAssertionKey(apiSession: $0, jwk: jwk) }) { completion($0.map { _ in () }) }
    }

    /// `events`: the batch in JSON (`ControlMessageJSON.encode`), encoded off this loop.
    func auditEvents(service: String, events: Data, _ completion: @escaping (Result<Void, Error>) -> Void) {
        call(encoded: { ControlMessageJSON.auditEvents(apiSession: $0, service: service, events: events) }) { completion($0.map { _ in () }) }
    }

    /// `records`: the batch in JSON (`ControlMessageJSON.encode`), encoded off this loop.
    func llmUsage(service: String, records: Data, _ completion: @escaping (Result<Void, Error>) -> Void) {
        call(encoded: { ControlMessageJSON.llmUsage(apiSession: $0, service: service, records: records) }) { completion($0.map { _ in () }) }
    }

    func llmSpend(service: String, _ completion: @escaping (Result<LLMSpend, Error>) -> Void) {
        call({ .llmSpend(apiSession: $0, service: service) }) { result in
            completion(result.flatMap { message in
                guard case .llmSpendIs(let spend) = message else { return .failure(ControlError.unexpectedReply("\(message)")) }
                return .success(spend)
            })
        }
    }

    /// Reports a circuit this tunneler refused (best effort: for the audit trail).
    func circuitRefused(_ circuitID: UInt64, reason: String) {
        call({ .circuitRefused(apiSession: $0, circuitID: circuitID, reason: reason) }) { [logger] result in
            if case .failure(let error) = result { logger.debug("circuit refusal not reported", metadata: ["error": "\(error)"]) }
        }
    }

    /// Sends a request with the API session, renewing the session first when it is about to
    /// expire (a tunneler runs for much longer than one session).
    private func call(_ make: @escaping (String) -> ControlMessage, completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        withAPISession(completion) { control, session in control.request(make(session)) { completion($0.unwrapped) } }
    }

    private func call(encoded make: @escaping (String) -> Data, completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        withAPISession(completion) { control, session in control.request(encoded: make(session)) { completion($0.unwrapped) } }
    }

    /// Runs `body` with a current API session (renewed first when it is about to expire).
    private func withAPISession(_ completion: @escaping (Result<ControlMessage, Error>) -> Void, _ body: @escaping (ControlPeer, String) -> Void) {
        guard let control, let apiSession else {
            return completion(.failure(ControlError.refused("controller unreachable at \(address)")))
        }
        guard apiSessionExpires.timeIntervalSinceNow < 60 else { return body(control, apiSession) }
        control.request(.authenticate) { [weak self] result in
            guard let self else { return }
            guard case .success(.apiSession(let token, _, let expires)) = result.unwrapped else {
                return completion(.failure(ControlError.refused("could not renew the API session: \(result)")))
            }
            self.apiSession = token
            self.apiSessionExpires = expires
            body(control, token)
        }
    }

    private func dial() {
        FramedChannel.connect(loop: loop, to: address, context: context) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                self.retry(after: error)
            case .success(let channel):
                let control = ControlPeer(channel: channel)
                channel.onReady = { [weak self, unowned control, unowned channel] peer in
                    guard let self else { return }
                    guard peer.kind == .controller else {
                        return channel.close(error: TLSError.peerNotAuthorized("expected the controller, got \(peer)"))
                    }
                    control.request(.authenticate) { [weak self] result in
                        guard let self else { return }
                        guard case .success(.apiSession(let token, _, let expires)) = result.unwrapped else {
                            return channel.close(error: ControlError.refused("authentication failed: \(result)"))
                        }
                        self.control = control
                        self.apiSession = token
                        self.apiSessionExpires = expires
                        self.backoffMs = 250
                        self.logger.info("connected to controller", metadata: ["address": "\(self.address)"])
                        self.onReady?()
                    }
                }
                control.onClose = { [weak self] error in
                    guard let self else { return }
                    if self.control === control {
                        self.control = nil
                        self.apiSession = nil
                    }
                    self.retry(after: error ?? ControlError.connectionClosed)
                }
            }
        }
    }

    private func retry(after error: Error) {
        logger.warning("controller unreachable; redialing", metadata: ["error": "\(error)", "in_ms": "\(backoffMs)"])
        let delay = backoffMs
        backoffMs = min(backoffMs * 2, 2_000)
        LoopTimer.once(on: loop, after: delay) { [weak self] in self?.dial() }
    }
}
