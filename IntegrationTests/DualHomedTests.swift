import Crypto
import Foundation
import XCTest
@testable import Shared

/// topology/dual-homed.yaml: the laptop's tunneler holds connections to r1 and r2 and dials
/// through r1. Killing r1 in the middle of a transfer moves the circuit to r2 with no byte lost.
final class DualHomedTests: XCTestCase {
    private var network: RunningTopology?

    override func tearDown() {
        network?.down()
        super.tearDown()
    }

    func test_clientsOwnEdgeRouterKilledMidTransfer_circuitMovesToItsOtherRouter_noByteLost() throws {
        let net = try RunningTopology("dual-homed.yaml")
        network = net
        let size = 1 << 30
        let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 60)
        client.send("GET /bytes?n=\(size) HTTP/1.1\r\nHost: demo\r\n\r\n")
        let circuits = (try net.network()["circuits"] as? [[String: Any]]) ?? []
        guard let path = circuits.last?["path"] as? [String] else { throw TestFailure("no circuit: \(circuits)") }
        XCTAssertEqual(path.first, "r1", "the laptop should dial through r1 first: \(path)")
        guard let pid = net.pid(of: "r1") else { throw TestFailure("no pid for r1") }

        var killed = false
        let (body, digest, closed) = client.readHashedBody { received in
            if !killed && received >= 64 << 20 {
                killed = true
                kill(pid, SIGKILL)
            }
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        XCTAssertTrue(killed)
        XCTAssertTrue(closed, "the transfer did not finish")
        XCTAssertEqual(body, size, "bytes lost or added when r1 died")
        XCTAssertEqual(digest, DemoPayload.digest(of: size))

        let audit = try Portless.cli(["audit", "--type", "circuit.rerouted"] + net.profile)
        XCTAssertTrue(audit.contains("reattached by laptop at r2"), audit)
        let (head, _) = try net.get("/")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), "new dials fail after r1 died: \(head)")
    }
}
