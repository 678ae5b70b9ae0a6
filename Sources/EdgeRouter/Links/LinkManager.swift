import Logging
import Shared

/// Keeps this router's links to its peers: accepts links from routers that dial it, dials the
/// ones the controller assigned to it (redialing with backoff while they stay assigned), and
/// reports each link's state and latency. Loop-confined.
final class LinkManager {
    private let loop: EventLoop
    private let clientContext: TLSContext
    private let logger: Logger
    private var listener: FramedListener?
    private(set) var links: [String: RouterLink] = [:]
    private var assigned: [String: String] = [:]
    private var dialing: Set<String> = []
    private var backoff: [String: UInt64] = [:]

    /// Whether a router presenting this certificate may hold a link with us (the roster says).
    var mayLink: (PeerIdentity) -> Bool = { _ in false }
    var onLinkUp: ((RouterLink) -> Void)?
    var onLinkDown: ((RouterLink, Error?) -> Void)?
    var onLatency: ((RouterLink) -> Void)?

    init(loop: EventLoop, listenAddress: SocketAddress?, serverContext: TLSContext, clientContext: TLSContext, logger: Logger) throws {
        self.loop = loop
        self.clientContext = clientContext
        self.logger = logger
        if let listenAddress {
            listener = try FramedListener(loop: loop, address: listenAddress, context: serverContext, logger: logger) { [unowned self] channel in
                channel.heartbeatIntervalMs = RouterLink.probeIntervalMs
                channel.onReady = { [unowned self, unowned channel] peer in
                    guard peer.kind == .router else {
                        return channel.close(error: TLSError.peerNotAuthorized("link listener accepts routers only, not \(peer)"))
                    }
                    // Only a router of the network, with the certificate it holds now, and one we are to link with.
                    guard self.mayLink(peer) else {
                        self.logger.warning("link refused: not a current peer of this router", metadata: ["peer": "\(peer)"])
                        return channel.close(error: TLSError.peerNotAuthorized("\(peer) is not a router this one links with (deleted, revoked or not assigned)"))
                    }
                    self.adopt(channel, peer: peer, dialed: false)
                }
            }
            logger.info("link listener ready", metadata: ["address": "\(listenAddress)"])
        }
    }

    var listenAddress: SocketAddress? { listener?.localAddress }

    /// The controller's current assignment: dial exactly these.
    func assign(_ targets: [LinkTarget]) {
        assigned = Dictionary(targets.map { ($0.name, $0.address) }, uniquingKeysWith: { first, _ in first })
        for (name, address) in assigned where links[name] == nil && !dialing.contains(name) { dial(name, address) }
    }

    private func dial(_ name: String, _ text: String) {
        guard let address = try? SocketAddress(parsing: text) else {
            return logger.error("bad link address from controller", metadata: ["peer": "\(name)", "address": "\(text)"])
        }
        dialing.insert(name)
        FramedChannel.connect(loop: loop, to: address, context: clientContext) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                self.dialFailed(name, error)
            case .success(let channel):
                channel.heartbeatIntervalMs = RouterLink.probeIntervalMs
                var ready = false
                channel.onReady = { [weak self, unowned channel] peer in
                    guard let self else { return }
                    guard peer.kind == .router, peer.name == name, self.mayLink(peer) else {
                        return channel.close(error: TLSError.peerNotAuthorized("expected router '\(name)' with its current certificate, got \(peer)"))
                    }
                    ready = true
                    self.dialing.remove(name)
                    self.backoff[name] = nil
                    self.adopt(channel, peer: peer, dialed: true)
                }
                channel.onClose = { [weak self] error in
                    if !ready { self?.dialFailed(name, error ?? ControlError.connectionClosed) }
                }
            }
        }
    }

    private func dialFailed(_ name: String, _ error: Error) {
        dialing.remove(name)
        let delay = backoff[name] ?? 250
        backoff[name] = min(delay * 2, 2_000)
        logger.warning("link dial failed; retrying", metadata: ["peer": "\(name)", "error": "\(error)", "in_ms": "\(delay)"])
        LoopTimer.once(on: loop, after: delay) { [weak self] in
            guard let self, let address = self.assigned[name], self.links[name] == nil, !self.dialing.contains(name) else { return }
            self.dial(name, address)
        }
    }

    /// Closes links the roster no longer allows (a peer deleted, revoked or re-enrolled).
    func dropLinks(where refused: (RouterLink) -> Bool) {
        for link in links.values where refused(link) {
            link.control.channel.close(error: TLSError.peerNotAuthorized("router '\(link.peer)' is no longer a current peer"))
        }
    }

    private func adopt(_ channel: FramedChannel, peer identity: PeerIdentity, dialed: Bool) {
        let peer = identity.name
        if let existing = links[peer] {
            // Both sides dialed at once, or the peer reconnected: the newer link (same certificate) wins.
            existing.control.channel.close(error: ControlError.refused("replaced by a newer link"))
        }
        let link = RouterLink(peer: peer, certificate: identity.certificateSHA256, control: ControlPeer(channel: channel), dialed: dialed)
        links[peer] = link
        channel.onRoundTrip = { [weak self, unowned link] ms in
            link.record(roundTrip: ms)
            self?.onLatency?(link)
        }
        link.control.onClose = { [weak self] error in
            guard let self else { return }
            if self.links[peer] === link { self.links.removeValue(forKey: peer) }
            self.onLinkDown?(link, error)
            if let address = self.assigned[peer], self.links[peer] == nil, !self.dialing.contains(peer) {
                LoopTimer.once(on: self.loop, after: 250) { [weak self] in
                    guard let self, self.links[peer] == nil, !self.dialing.contains(peer) else { return }
                    self.dial(peer, address)
                }
            }
        }
        logger.info("link up", metadata: ["peer": "\(peer)", "dialed": "\(dialed)"])
        onLinkUp?(link)
    }
}
