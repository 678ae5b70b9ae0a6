import Foundation
import Logging
import Shared

/// The router's outbound control connection: hello, requests, pushed revocations, and redial
/// with backoff when the controller goes away. Loop-confined.
final class ControllerLink {
    private let loop: EventLoop
    private let address: SocketAddress
    private let context: TLSContext
    /// Builds the hello sent on every (re)connection.
    var hello: () -> ControlMessage
    private let logger: Logger
    private var peer: ControlPeer?
    private var backoffMs: UInt64 = 250
    private static let maxBackoffMs: UInt64 = 2_000
    private var stopped = false
    /// Failed attempts since the last success: a controller that stays away is logged now and then, not every 2 s.
    private var failures = 0
    let addressText: String

    /// Messages the controller pushes (revocations, links, routes); `reply` when it awaits one.
    var onPush: ((ControlMessage, ControlPeer.Reply?) -> Void)?
    /// After each successful hello.
    var onConnected: ((ControlMessage) -> Void)?
    /// When the channel closes (it is redialed).
    var onDisconnected: (() -> Void)?

    init(loop: EventLoop, address: SocketAddress, context: TLSContext, hello: @escaping () -> ControlMessage, logger: Logger) {
        self.loop = loop
        self.address = address
        self.addressText = address.description
        self.context = context
        self.hello = hello
        self.logger = logger
    }

    var isConnected: Bool { peer != nil }

    func start() { dial() }

    /// Closes the channel and stops redialing (the controller left the network).
    func stop() {
        stopped = true
        peer?.channel.close(error: ControlError.refused("controller removed"))
        peer = nil
    }

    func request(_ message: ControlMessage, completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        guard let peer else {
            completion(.failure(ControlError.refused("controller unreachable")))
            return
        }
        peer.request(message) { completion($0.unwrapped) }
    }

    func notify(_ message: ControlMessage) { peer?.notify(message) }

    private func dial() {
        guard !stopped else { return }
        FramedChannel.connect(loop: loop, to: address, context: context) { [weak self] result in
            guard let self, !self.stopped else {
                if case .success(let channel) = result { channel.close(error: nil) }
                return
            }
            switch result {
            case .failure(let error):
                self.retry(after: error)
            case .success(let channel):
                let control = ControlPeer(channel: channel)
                channel.onReady = { [weak self, unowned control] peer in
                    guard let self else { return }
                    guard peer.kind == .controller else {
                        channel.close(error: TLSError.peerNotAuthorized("expected the controller, got \(peer)"))
                        return
                    }
                    control.request(self.hello()) { [weak self] result in
                        guard let self else { return }
                        switch result.unwrapped {
                        case .success(let welcome):
                            self.peer = control
                            self.backoffMs = 250
                            self.failures = 0
                            self.logger.info("connected to controller", metadata: ["address": "\(self.address)"])
                            self.onConnected?(welcome)
                        case .failure(let error):
                            channel.close(error: error)
                        }
                    }
                }
                control.onMessage = { [weak self] message, reply in self?.onPush?(message, reply) }
                control.onClose = { [weak self] error in
                    guard let self else { return }
                    if self.peer === control {
                        self.peer = nil
                        self.onDisconnected?()
                    }
                    guard !self.stopped else { return }
                    self.retry(after: error ?? ControlError.connectionClosed)
                }
            }
        }
    }

    private func retry(after error: Error) {
        guard !stopped else { return }
        failures += 1
        let level: Logger.Level = failures == 1 || failures % 30 == 0 ? .warning : .debug
        logger.log(level: level, "controller link down; redialing",
                   metadata: ["address": "\(address)", "error": "\(error)", "in_ms": "\(backoffMs)", "attempts": "\(failures)"])
        let delay = backoffMs
        backoffMs = min(backoffMs * 2, Self.maxBackoffMs)
        LoopTimer.once(on: loop, after: delay) { [weak self] in self?.dial() }
    }
}
