// portless-test-hostile-router: an edge router that attacks the circuits it carries, for the
// integration tests only (IntegrationTests/HostileRouterTests). It is the real router with a
// `RouterTampering` plugged in — what a compromised router could do, no more.
//
//   portless-test-hostile-router MODE --state DIR --edge HOST:PORT [--link HOST:PORT]
//
// MODE:
//   impersonate-host:IDENTITY_DIR  answers every dialer's end-to-end handshake itself, as the
//                                  enrolled identity in IDENTITY_DIR (a router colluding with
//                                  another identity of the network), and keeps the real host out
//   forge-grant:IDENTITY_DIR       the same, and rewrites the circuit grant to name that identity
//   truncate                       forwards normally, but after the first data frame towards the
//                                  dialer forges an end of stream and drops the rest
//   stall-hello                    forwards normally but never delivers an end-to-end hello
//                                  (either way): the host holds a half-made circuit
//   drop-dialer-hello              forwards normally but drops the dialer's hello only: the host
//                                  gets the dialer's sealed data before any hello
// What it did is written as JSON to $PORTLESS_HOSTILE_REPORT after every event.
import Crypto
import EdgeRouter
import Foundation
import Logging
import Shared

final class HostileTampering: RouterTampering {
    enum Mode { case impersonateHost, forgeGrant, truncate, stallHello, dropDialerHello }
    struct Report: Codable {
        var mode = ""
        var hellosAnswered = 0
        var grantsForged = 0
        /// Data frames a dialer sent towards the impostor: each would be a dialer that accepted it.
        var dialerDataFrames = 0
        var endsForged = 0
        var hellosWithheld = 0
    }

    let mode: Mode
    let impostor: EnrolledIdentity?
    let reportPath: String?
    private var report = Report()
    private var grants: [UInt64: String] = [:]
    private var forwardedToDialer: [UInt64: Int] = [:]
    private var truncated: Set<UInt64> = []

    init(mode: Mode, impostor: EnrolledIdentity?, reportPath: String?) {
        self.mode = mode
        self.impostor = impostor
        self.reportPath = reportPath
        report.mode = "\(mode)"
        write()
    }

    private func write() {
        guard let reportPath, let data = try? JSONEncoder().encode(report) else { return }
        try? data.write(to: URL(fileURLWithPath: reportPath), options: .atomic)
    }

    func dialed(_ answer: ControlMessage) -> ControlMessage {
        guard case .dialed(let circuitID, let host, let grant) = answer, let impostor else { return answer }
        guard mode == .forgeGrant, var claims = try? SignedToken.unverifiedClaims(grant, as: CircuitGrant.self) else {
            grants[circuitID] = grant
            return answer
        }
        // The router has no session key: the best it can do is sign with one of its own.
        claims.host = impostor.name
        let forged = (try? SignedToken.sign(claims, type: CircuitGrant.tokenType, key: Curve25519.Signing.PrivateKey())) ?? grant
        grants[circuitID] = forged
        report.grantsForged += 1
        write()
        _ = host
        return .dialed(circuitID: circuitID, hostIdentity: impostor.name, grant: forged)
    }

    func intercept(_ frame: FrameView, fromDialer: Bool, dialerSide: FramedChannel?, hostSide: FramedChannel?) -> Bool {
        let id = frame.header.circuitID
        switch mode {
        case .impersonateHost, .forgeGrant:
            guard fromDialer else { return true }  // the real host never reaches the dialer
            if frame.header.type == .e2eHandshake, let impostor, let grant = grants[id],
               let handshake = try? E2EHandshake(role: .host, circuitID: id, grant: grant, identityKey: impostor.key, certificate: impostor.certificate),
               case let hello = handshake.hello.encoded() {
                dialerSide?.send(.e2eHandshake, circuitID: id, body: hello)
                report.hellosAnswered += 1
            } else if frame.header.type == .data {
                report.dialerDataFrames += 1
            }
            write()
            return true
        case .stallHello:
            guard frame.header.type == .e2eHandshake else { return false }
            report.hellosWithheld += 1
            write()
            return true
        case .dropDialerHello:
            guard fromDialer, frame.header.type == .e2eHandshake else { return false }
            report.hellosWithheld += 1
            write()
            return true
        case .truncate:
            guard !fromDialer else { return false }
            if truncated.contains(id) { return true }
            guard frame.header.type == .data else { return false }
            let count = (forwardedToDialer[id] ?? 0) + 1
            forwardedToDialer[id] = count
            dialerSide?.forward(frame)
            if count == 1 {
                // An end the router cannot sign: it can only guess the tag.
                dialerSide?.send(.circuitEnd, circuitID: id, sequence: frame.header.sequence + 1, body: [UInt8](repeating: 0, count: 16))
                truncated.insert(id)
                report.endsForged += 1
                write()
            }
            return true
        }
    }
}

func option(_ name: String, in arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let modeText = arguments.first, let state = option("--state", in: arguments), let edge = option("--edge", in: arguments) else {
    FileHandle.standardError.write(Data("usage: portless-test-hostile-router MODE --state DIR --edge HOST:PORT [--link HOST:PORT]\n".utf8))
    exit(2)
}
do {
    let parts = modeText.split(separator: ":", maxSplits: 1).map(String.init)
    let mode: HostileTampering.Mode
    switch parts[0] {
    case "impersonate-host": mode = .impersonateHost
    case "forge-grant": mode = .forgeGrant
    case "truncate": mode = .truncate
    case "stall-hello": mode = .stallHello
    case "drop-dialer-hello": mode = .dropDialerHello
    default: throw ValidationFailure("unknown mode \(parts[0])")
    }
    let impostor = try parts.count > 1 ? EnrolledIdentity(directory: parts[1]) : nil
    let tampering = HostileTampering(mode: mode, impostor: impostor, reportPath: ProcessInfo.processInfo.environment["PORTLESS_HOSTILE_REPORT"])
    PortlessLogging.bootstrap()
    let identity = try EnrolledIdentity(directory: state)
    let edgeAddress = try SocketAddress(parsing: edge)
    let linkAddress = try option("--link", in: arguments).map(SocketAddress.init(parsing:))
    var logger = Logger(label: "portless.hostile-router")
    logger[metadataKey: "router"] = "\(identity.name)"
    let loop = try EventLoop()
    SignalHandling.stopOnTermination(loop)
    var node: RouterNode?
    try loop.run {
        node = try RouterNode(identity: identity, loop: loop, edgeAddress: edgeAddress, linkAddress: linkAddress, logger: logger, stateDirectory: state, tampering: tampering)
    }
    withExtendedLifetime(node) {}
} catch {
    FileHandle.standardError.write(Data("portless-test-hostile-router: \(error)\n".utf8))
    exit(1)
}

struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
