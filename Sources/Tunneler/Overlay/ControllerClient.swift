import Foundation
import Logging
import Shared

/// The tunneler's client-API connection to a controller: mTLS, an API session, then service
/// listings and service sessions. It holds one connection; when that controller goes away it
/// fails over to the next one of the network's controllers (their list comes with enrollment
/// and from the controllers, and is kept beside the identity), with backoff. Loop-confined.
final class ControllerClient {
    private let loop: EventLoop
    private var addresses: [SocketAddress]
    private var current = 0
    private var address: SocketAddress { addresses[current % addresses.count] }
    private let file: String?
    private let context: TLSContext
    private let logger: Logger
    private var control: ControlPeer?
    private var apiSession: String?
    private var apiSessionExpires = Date.distantPast
    private var backoffMs: UInt64 = 250
    /// Failed attempts since the last success: logged now and then, not every time.
    private var failures = 0

    /// After each (re)connection with a fresh API session.
    var onReady: (() -> Void)?

    init(loop: EventLoop, address: SocketAddress, context: TLSContext, logger: Logger, stateDirectory: String? = nil) {
        self.loop = loop
        file = stateDirectory.map { $0 + "/controllers.json" }
        let remembered = (file.flatMap { try? Files.readJSON([String].self, from: $0) } ?? []).compactMap { try? SocketAddress(parsing: $0) }
        var seen = Set<String>()
        addresses = ([address] + remembered).filter { seen.insert($0.description).inserted }
        self.context = context
        self.logger = logger
    }

    /// The controller this client is connected to (or tries next).
    var controllerAddress: String { address.description }

    /// The network's controllers as one of them says; the current one stays first while it is listed.
    private func update(_ list: [String]) {
        let parsed = list.compactMap { try? SocketAddress(parsing: $0) }
        guard !parsed.isEmpty, parsed.map(\.description) != addresses.map(\.description) else { return }
        let now = address.description
        addresses = parsed
        current = parsed.firstIndex { $0.description == now } ?? 0
        if let file { try? Files.writeJSON(parsed.map(\.description), to: file) }
        logger.info("controllers of the network", metadata: ["addresses": "\(parsed.map(\.description).joined(separator: ", "))"])
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

    func reportCatalog(service: String, report: String, entries: [CatalogEntry], complete: Bool, _ completion: @escaping (Result<Void, Error>) -> Void) {
        call({ .reportCatalog(apiSession: $0, service: service, report: report, entries: entries, complete: complete) }) { completion($0.map { _ in () }) }
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
                        self.failures = 0
                        self.logger.info("connected to controller", metadata: ["address": "\(self.address)"])
                        self.onReady?()
                    }
                }
                control.onMessage = { [weak self] message, reply in
                    guard let self else { return }
                    if case .controllers(let list) = message { self.update(list) } else { reply?(.failure(message: "unexpected message from the controller")) }
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

    /// The next controller of the list; the delay grows only once every one of them failed.
    private func retry(after error: Error) {
        let failed = address
        current = (current + 1) % addresses.count
        let delay: UInt64 = current == 0 || addresses.count == 1 ? backoffMs : 50
        if current == 0 || addresses.count == 1 { backoffMs = min(backoffMs * 2, 2_000) }
        failures += 1
        logger.log(level: failures <= addresses.count || failures % 30 == 0 ? .warning : .debug, "controller unreachable; trying the next", metadata: ["failed": "\(failed)", "next": "\(address)", "error": "\(error)", "in_ms": "\(delay)"])
        LoopTimer.once(on: loop, after: delay) { [weak self] in self?.dial() }
    }
}
