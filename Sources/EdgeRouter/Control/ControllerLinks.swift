import Foundation
import Logging
import Shared

/// The router's channels to every controller of its network, each redialed on its own. A
/// controller can only install routes on routers it has a channel to, so a router holds one to
/// each (as OpenZiti routers do): what the router reports (terminators, links, closed circuits)
/// goes to all of them, and what needs one answer (a new circuit, a reattachment) goes to the
/// first connected one in the list — the next one when that one is gone. Loop-confined.
final class ControllerLinks {
    private let loop: EventLoop
    private let context: TLSContext
    private let logger: Logger
    private var links: [ControllerLink] = []
    /// Where the list of controllers is kept across restarts (nil: not kept).
    private let file: String?

    /// Builds the hello sent on every (re)connection to any controller.
    var hello: () -> ControlMessage { didSet { for link in links { link.hello = hello } } }
    /// Messages a controller pushes; `reply` when it awaits one.
    var onPush: ((ControlMessage, ControlPeer.Reply?) -> Void)?
    /// After each successful hello, with the link that made it (to announce state to it).
    var onConnected: ((ControllerLink, ControlMessage) -> Void)?

    init(loop: EventLoop, addresses: [SocketAddress], context: TLSContext, hello: @escaping () -> ControlMessage, logger: Logger,
         stateDirectory: String?) {
        self.loop = loop
        self.context = context
        self.logger = logger
        self.hello = hello
        file = stateDirectory.map { $0 + "/controllers.json" }
        let remembered = (file.flatMap { try? Files.readJSON([String].self, from: $0) } ?? []).compactMap { try? SocketAddress(parsing: $0) }
        var seen = Set<String>()
        for address in addresses + remembered where seen.insert(address.description).inserted { add(address) }
    }

    var isConnected: Bool { links.contains { $0.isConnected } }
    var addresses: [String] { links.map(\.addressText) }

    func start() { links.forEach { $0.start() } }

    /// A request that needs one answer: to the first connected controller.
    func request(_ message: ControlMessage, completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        guard let link = links.first(where: { $0.isConnected }) else {
            return completion(.failure(ControlError.refused("no controller reachable (\(addresses.joined(separator: ", ")))")))
        }
        link.request(message, completion: completion)
    }

    /// A request about something one controller knows (a circuit it made): asked of each
    /// connected controller in turn until one answers other than with a failure.
    func requestFromAny(_ message: ControlMessage, completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        let connected = links.filter { $0.isConnected }
        guard !connected.isEmpty else {
            return completion(.failure(ControlError.refused("no controller reachable (\(addresses.joined(separator: ", ")))")))
        }
        func ask(_ index: Int) {
            connected[index].request(message) { result in
                if case .success(.failure) = result, index + 1 < connected.count { return ask(index + 1) }
                if case .failure = result, index + 1 < connected.count { return ask(index + 1) }
                completion(result)
            }
        }
        ask(0)
    }

    /// A request answered by the first connected controller and told to every other one.
    func requestAndTellAll(_ message: ControlMessage, completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        let connected = links.filter { $0.isConnected }
        for other in connected.dropFirst() { other.notify(message) }
        request(message, completion: completion)
    }

    /// To every connected controller.
    func notify(_ message: ControlMessage) {
        for link in links where link.isConnected { link.notify(message) }
    }

    /// The network's controllers as one of them says: new ones are dialed, gone ones dropped.
    func update(_ addresses: [String]) {
        let parsed = addresses.compactMap { try? SocketAddress(parsing: $0) }
        guard !parsed.isEmpty else { return }
        let wanted = Set(parsed.map(\.description))
        for link in links where !wanted.contains(link.addressText) {
            logger.info("controller left the network", metadata: ["address": "\(link.addressText)"])
            link.stop()
        }
        links.removeAll { !wanted.contains($0.addressText) }
        for address in parsed where !links.contains(where: { $0.addressText == address.description }) {
            logger.info("controller joined the network", metadata: ["address": "\(address)"])
            add(address).start()
        }
        if let file { try? Files.writeJSON(links.map(\.addressText), to: file) }
    }

    @discardableResult
    private func add(_ address: SocketAddress) -> ControllerLink {
        let link = ControllerLink(loop: loop, address: address, context: context, hello: hello, logger: logger)
        link.onPush = { [weak self] message, reply in self?.onPush?(message, reply) }
        link.onConnected = { [weak self, unowned link] welcome in self?.onConnected?(link, welcome) }
        links.append(link)
        return link
    }
}
