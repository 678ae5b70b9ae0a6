import Foundation
@testable import Shared

/// The control protocol spoken from test code as an enrolled identity, with its own certificate:
/// what a compromised tunneler could send the controller.
final class ControlSession: @unchecked Sendable {
    // safe: `peer` and `apiSession` are touched only on `loop`'s thread.
    private let loop: EventLoop
    private var peer: ControlPeer?
    private var apiSession = ""

    private init(loop: EventLoop) { self.loop = loop }

    static func connect(identityDirectory: String) async throws -> ControlSession {
        let identity = try EnrolledIdentity(directory: identityDirectory)
        let context = try TLSContext(server: false, credentials: identity.tlsCredentials)
        let address = identity.controlAddress
        let session = ControlSession(loop: try EventLoop.startThread(name: "test-control"))
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            session.loop.execute {
                FramedChannel.connect(loop: session.loop, to: address, context: context) { result in
                    switch result {
                    case .failure(let error): continuation.resume(throwing: error)
                    case .success(let channel):
                        let peer = ControlPeer(channel: channel)
                        channel.onReady = { _ in
                            peer.request(.authenticate) { answer in
                                guard case .success(.apiSession(let token, _, _)) = answer.unwrapped else {
                                    return continuation.resume(throwing: TestFailure("authentication failed: \(answer)"))
                                }
                                session.peer = peer
                                session.apiSession = token
                                continuation.resume()
                            }
                        }
                    }
                }
            }
        }
        return session
    }

    /// Sends what `make` builds with the API session; returns the controller's answer.
    func request(_ make: @escaping @Sendable (String) -> ControlMessage) async throws -> ControlMessage {
        try await withCheckedThrowingContinuation { continuation in
            loop.execute {
                guard let peer = self.peer else { return continuation.resume(throwing: TestFailure("not connected")) }
                peer.request(make(self.apiSession)) { continuation.resume(with: $0) }
            }
        }
    }

    func close() {
        loop.execute { self.peer?.channel.close() }
        loop.stop()
    }
}
