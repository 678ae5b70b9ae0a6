import Foundation
import Logging
import Shared

/// The tunneler's connection to its edge router: control requests (bind, dial), incoming
/// circuits, and the circuit frames of every circuit it holds. Loop-confined.
///
/// Backpressure is per circuit: a full router socket pauses the local sockets feeding it (each
/// resumes when it drains); a full local socket slows only its own circuit, through that
/// circuit's window. The router connection itself is always read — heartbeats included.
final class EdgeLink {
    let router: RouterEndpoint
    private(set) var control: ControlPeer?
    private var circuits: [UInt64: CircuitEndpoint] = [:]
    private var pausedEndpoints: [UInt64: CircuitEndpoint] = [:]
    private let logger: Logger

    /// A router offers a circuit; `grant` is the controller's signed grant, `caller` only what the router says.
    var onIncomingCircuit: ((_ circuitID: UInt64, _ service: String, _ grant: String, _ reply: @escaping ControlPeer.Reply) -> Void)?
    var onRevoked: ((_ reason: String) -> Void)?
    /// The connection dropped; the circuits it carried are handed over, still open.
    var onClose: ((Error?, [CircuitEndpoint]) -> Void)?

    init(router: RouterEndpoint, logger: Logger) {
        self.router = router
        self.logger = logger
    }

    var channel: FramedChannel? { control?.channel }

    func connect(loop: EventLoop, context: TLSContext, completion: @escaping (Error?) -> Void) {
        let address: SocketAddress
        do { address = try SocketAddress(parsing: router.edgeAddress) } catch { return completion(error) }
        FramedChannel.connect(loop: loop, to: address, context: context) { [weak self] result in
            guard let self else { return }
            switch result {
            case .failure(let error):
                completion(error)
            case .success(let channel):
                let control = ControlPeer(channel: channel)
                var ready = false
                channel.onReady = { [weak self, unowned channel] peer in
                    guard let self else { return }
                    guard peer.kind == .router, peer.name == self.router.name else {
                        channel.close(error: TLSError.peerNotAuthorized("expected router '\(self.router.name)', got \(peer)"))
                        return
                    }
                    ready = true
                    self.control = control
                    completion(nil)
                }
                channel.onWritable = { [weak self] in self?.routerDrained() }
                control.onCircuitFrame = { [weak self] frame in self?.circuits[frame.header.circuitID]?.received(frame) }
                control.onMessage = { [weak self] message, reply in self?.received(message, reply: reply) }
                control.onClose = { [weak self] error in
                    guard let self else { return }
                    if !ready { completion(error ?? ControlError.connectionClosed); return }
                    self.control = nil
                    let orphans = Array(self.circuits.values)
                    self.circuits.removeAll()
                    self.pausedEndpoints.removeAll()
                    for endpoint in orphans { endpoint.detached() }
                    self.onClose?(error, orphans)
                }
            }
        }
    }

    func request(_ message: ControlMessage, completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        guard let control else { return completion(.failure(ControlError.refused("not connected to router '\(router.name)'"))) }
        control.request(message) { completion($0.unwrapped) }
    }

    private func received(_ message: ControlMessage, reply: ControlPeer.Reply?) {
        switch message {
        case .incomingCircuit(let circuitID, let service, _, _, let grant):
            onIncomingCircuit?(circuitID, service, grant, reply ?? { _ in })
        case .revoke(_, _, let reason):
            onRevoked?(reason)
        default:
            reply?(.failure(message: "unexpected message from the router"))
        }
    }

    func add(_ circuit: CircuitEndpoint) {
        circuits[circuit.id] = circuit
        circuit.onClosed = { [weak self] endpoint in
            guard let self else { return }
            self.circuits.removeValue(forKey: endpoint.id)
            self.pausedEndpoints.removeValue(forKey: endpoint.id)
        }
    }

    var circuitCount: Int { circuits.count }
    /// Dials sent and not answered yet: circuits about to exist.
    private(set) var dialsInFlight = 0
    /// What new circuits are spread by.
    var load: Int { circuits.count + dialsInFlight }

    /// Asks the router for a circuit (counted in `load` until answered).
    func dial(session: String, completion: @escaping (Result<ControlMessage, Error>) -> Void) {
        dialsInFlight += 1
        request(.dial(session: session)) { [weak self] result in
            self?.dialsInFlight -= 1
            completion(result)
        }
    }

    // MARK: backpressure

    /// `endpoint` stopped reading its local socket because the router connection is full.
    func pauseUntilWritable(_ endpoint: CircuitEndpoint) {
        pausedEndpoints[endpoint.id] = endpoint
    }

    private func routerDrained() {
        let endpoints = pausedEndpoints.values
        pausedEndpoints.removeAll()
        for endpoint in endpoints { endpoint.routerDrained() }
    }
}
