import Crypto
import Foundation
import XCTest
@testable import Shared

/// Real processes from topology/mesh.yaml: four routers in a diamond, the client tunneler on r1
/// and the enterprise tunneler on r4, so every circuit crosses three routers.
final class MeshTests: XCTestCase {
    nonisolated(unsafe) static var network: RunningTopology?
    nonisolated(unsafe) static var startError: String?

    override class func setUp() {
        super.setUp()
        do { network = try RunningTopology("mesh.yaml") } catch { startError = "\(error)" }
    }

    override class func tearDown() {
        network?.down()
        super.tearDown()
    }

    private var net: RunningTopology! { Self.network }  // safe: setUpWithError throws when it is nil

    override func setUpWithError() throws {
        if Self.network == nil { throw TestFailure("mesh did not start: \(Self.startError ?? "unknown")") }
    }

    /// Opens a circuit that stays up, and returns it with the path the controller chose.
    private func heldCircuitPath() throws -> (TCPClient, [String]) {
        let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 10)
        client.send("GET /hold HTTP/1.1\r\nHost: demo\r\n\r\n")
        guard client.read(until: "holding").contains("holding") else { throw TestFailure("no answer on /hold") }
        let circuits = (try net.network()["circuits"] as? [[String: Any]]) ?? []
        guard let path = circuits.last?["path"] as? [String] else { throw TestFailure("no live circuit reported") }
        return (client, path)
    }

    func test_circuit_crossesThreeRouters_onTheDiamond() throws {
        let (head, body) = try net.get("/")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
        XCTAssertTrue(String(decoding: body, as: UTF8.self).contains("caller: laptop"))
        let (_, path) = try heldCircuitPath()
        XCTAssertEqual(path.count, 3, "path \(path)")
        XCTAssertEqual(path.first, "r1")
        XCTAssertEqual(path.last, "r4")
        XCTAssertTrue(["r2", "r3"].contains(path[1]))
    }

    func test_64MiB_acrossThreeRouters_arrivesIntact() throws {
        let size = 64 << 20
        let (head, body) = try net.get("/bytes?n=\(size)")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
        XCTAssertEqual(body.count, size)
        var expected = SHA256()
        for _ in 0..<(size / DemoPayload.blockSize) { expected.update(data: DemoPayload.block) }
        XCTAssertEqual(SHA256.hash(data: body), expected.finalize())
    }

    /// Runs last: it kills a router.
    func test_z_whenTheMiddleRouterDies_newCircuitsTakeTheOtherPath() throws {
        let (held, path) = try heldCircuitPath()
        let middle = path[1]
        guard let pid = net.pid(of: middle) else { throw TestFailure("no pid for \(middle)") }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        XCTAssertTrue(held.readToEnd().1, "the circuit through the dead router should be closed, not hang")

        let deadline = Date().addingTimeInterval(5)
        var newPath: [String] = []
        while Date() < deadline, newPath.isEmpty {
            if let (_, path) = try? heldCircuitPath(), !path.contains(middle) { newPath = path } else { usleep(100_000) }
        }
        XCTAssertEqual(newPath.count, 3, "no new circuit avoided \(middle)")
        XCTAssertFalse(newPath.contains(middle))
        let (head, _) = try net.get("/")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
    }
}
