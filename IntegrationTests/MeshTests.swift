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
        XCTAssertEqual(SHA256.hash(data: body), DemoPayload.digest(of: size))
    }

    private func residentBytes(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }

    /// A client that stops reading stops the sender through every hop; each router holds at most
    /// the circuit's window (4 MiB) plus its write high-water mark (1 MiB) for it.
    func test_stalledReader_boundsEveryRoutersMemory_andTheTransferResumesIntact() throws {
        let routers = ["r1", "r2", "r3", "r4"].compactMap { net.pid(of: $0) }
        XCTAssertEqual(routers.count, 4)
        let before = routers.map(residentBytes)
        let size = 256 << 20
        let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 60)
        client.send("GET /bytes?n=\(size) HTTP/1.1\r\nHost: demo\r\n\r\n")
        sleep(3)  // the reader is stalled: nothing is read
        let bound = 16 << 20
        for (index, pid) in routers.enumerated() {
            let growth = residentBytes(pid) - before[index]
            print("router r\(index + 1) grew by \(growth) bytes while the reader stalled")
            XCTAssertLessThan(growth, bound, "router r\(index + 1) grew by \(growth) bytes for one stalled circuit")
        }
        let (body, digest, closed) = client.readHashedBody()
        XCTAssertTrue(closed)
        XCTAssertEqual(body, size)
        XCTAssertEqual(digest, DemoPayload.digest(of: size))
    }

    /// Runs last: it kills the router in the middle of a live transfer.
    func test_z_middleRouterKilledMidTransfer_noByteIsLost_andNewCircuitsAvoidIt() throws {
        let size = 1 << 30
        let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 60)
        client.send("GET /bytes?n=\(size) HTTP/1.1\r\nHost: demo\r\n\r\n")
        let circuits = (try net.network()["circuits"] as? [[String: Any]]) ?? []
        guard let path = circuits.last?["path"] as? [String], path.count == 3 else { throw TestFailure("no 3-router circuit: \(circuits)") }
        let middle = path[1]
        guard let pid = net.pid(of: middle) else { throw TestFailure("no pid for \(middle)") }

        var killed = false
        let (body, digest, closed) = client.readHashedBody { received in
            if !killed && received >= 64 << 20 {
                killed = true
                kill(pid, SIGKILL)
            }
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        XCTAssertTrue(killed, "the transfer ended before the router could be killed")
        XCTAssertTrue(closed, "the transfer did not finish")
        XCTAssertEqual(body, size, "bytes lost or added when \(middle) died")
        XCTAssertEqual(digest, DemoPayload.digest(of: size), "the bytes differ after \(middle) died")

        let (_, newPath) = try heldCircuitPath()
        XCTAssertEqual(newPath.count, 3)
        XCTAssertFalse(newPath.contains(middle), "a new circuit used the dead router: \(newPath)")
        let audit = try Portless.cli(["audit", "--type", "circuit.rerouted"] + net.profile)
        XCTAssertTrue(audit.contains("was=r1>\(middle)>r4"), audit)
    }
}
