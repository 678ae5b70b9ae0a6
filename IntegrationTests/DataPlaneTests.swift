import Crypto
import Foundation
import XCTest
@testable import Shared

/// Per-circuit flow control and loss-free failover, with real processes: a reader that stalls
/// for longer than the heartbeat window holds up only its own circuit (dataplane.yaml), and an
/// upload survives the loss of the router at either end of its circuit (dual-homed-both.yaml).
final class DataPlaneTests: XCTestCase {
    private var network: RunningTopology?

    override func tearDown() {
        network?.down()
        super.tearDown()
    }

    /// Resident memory of a process, in bytes.
    private func rss(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kilobytes * 1024
    }

    /// Reads `count` bytes of a response body (after its head) into `hash`; returns how many came.
    private func read(_ client: TCPClient, body count: Int, into hash: inout SHA256, headDone: inout Bool, pending: inout [UInt8]) -> Int {
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while received < count {
            let n = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, min($0.count, count - received + (headDone ? 0 : 4096)), 0) }
            if n <= 0 { break }
            var chunk = buffer[0..<n]
            if !headDone {
                pending.append(contentsOf: chunk)
                guard let split = pending.firstRange(of: [13, 10, 13, 10]) else { continue }
                headDone = true
                chunk = pending[split.upperBound...]
                pending.removeAll()
            }
            hash.update(data: chunk)
            received += chunk.count
        }
        return received
    }

    func test_aStalledReader_holdsUpOnlyItsOwnCircuit_andResumesByteExact() throws {
        let net = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/dataplane.yaml")
        network = net
        let size = 512 << 20
        let stalled = try TCPClient(net.interceptAddress(), timeoutSeconds: 60)
        stalled.send("GET /bytes?n=\(size) HTTP/1.1\r\nHost: demo\r\n\r\n")
        var hash = SHA256(), headDone = false, pending: [UInt8] = []
        var received = read(stalled, body: 16 << 20, into: &hash, headDone: &headDone, pending: &pending)
        XCTAssertEqual(received, 16 << 20)

        // The reader stops for longer than three heartbeat periods.
        let processes = ["edge-1", "laptop", "enterprise"].compactMap { name in net.pid(of: name).map { (name, $0) } }
        Thread.sleep(forTimeInterval: 2)  // the window fills and everything settles
        let before = Dictionary(uniqueKeysWithValues: processes.map { ($0.0, rss($0.1)) })
        let stallEnds = Date().addingTimeInterval(Double(TransportLimits.heartbeatIntervalMs) * Double(TransportLimits.heartbeatMissesAllowed) / 1000 + 5)
        var tried = 0, answered = 0
        var other: (bytes: Int, digest: SHA256.Digest, closed: Bool)?
        while Date() < stallEnds {
            tried += 1
            if let (head, body) = try? net.get("/"), head.hasPrefix("HTTP/1.1 200"), String(decoding: body, as: UTF8.self).contains("caller") { answered += 1 }
            if other == nil {
                let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 60)
                client.send("GET /bytes?n=\(64 << 20) HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
                other = client.readHashedBody()
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
        let after = Dictionary(uniqueKeysWithValues: processes.map { ($0.0, rss($0.1)) })
        print("during a \(Int(Double(TransportLimits.heartbeatIntervalMs) * 3 / 1000 + 5)) s stall: \(answered)/\(tried) fresh requests answered")
        XCTAssertEqual(answered, tried, "fresh requests through the same tunneler and router must keep answering")
        XCTAssertEqual(other?.bytes, 64 << 20, "another download completes meanwhile")
        XCTAssertEqual(other?.digest, DemoPayload.digest(of: 64 << 20))
        for (name, _) in processes {
            let growth = (after[name] ?? 0) - (before[name] ?? 0)
            print("\(name) grew by \(growth) bytes while the reader stalled")
            XCTAssertLessThan(growth, 32 << 20, "\(name) must stay bounded while one circuit stalls (window 4 MiB per circuit per hop)")
        }

        // The reader resumes: every byte arrives, in order.
        received += read(stalled, body: size - received, into: &hash, headDone: &headDone, pending: &pending)
        XCTAssertEqual(received, size, "the stalled download, resumed, completes")
        XCTAssertEqual(hash.finalize(), DemoPayload.digest(of: size))
    }

    /// Uploads `size` bytes of `DemoPayload` with `PUT /sha256`, calling `midway` once 64 MiB went.
    private func upload(_ size: Int, through net: RunningTopology, midway: () -> Void) throws -> String {
        let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 120)
        client.send("PUT /sha256 HTTP/1.1\r\nHost: demo\r\nContent-Length: \(size)\r\n\r\n")
        var sent = 0
        var triggered = false
        let block = DemoPayload.block
        while sent < size {
            let count = min(block.count, size - sent)
            client.send(Array(block[0..<count]))
            sent += count
            if !triggered && sent >= 64 << 20 {
                triggered = true
                midway()
            }
        }
        return client.read(until: "\n").split(separator: "\r\n").last.map(String.init)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    private func expectedDigest(_ size: Int) -> String {
        DemoPayload.digest(of: size).map { String(format: "%02x", $0) }.joined()
    }

    /// How a host routes on more than one core: one router process per core, and a tunneler holding
    /// a connection to each puts every new circuit on the one carrying fewer.
    func test_aTunnelerOnTwoRouters_spreadsItsCircuitsOverBoth() throws {
        let net = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/dual-homed-both.yaml")
        network = net
        var held: [TCPClient] = []
        for _ in 0..<4 {
            let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 30)
            client.send("GET /hold HTTP/1.1\r\nHost: demo\r\n\r\n")
            let answer = client.read(until: "holding\n")
            XCTAssertTrue(answer.contains("holding"), "a held request was not answered (got \(answer.debugDescription))\n\(net.logTails())")
            held.append(client)
        }
        let circuits = (try net.network()["circuits"] as? [[String: Any]]) ?? []
        let firstHops = circuits.compactMap { ($0["path"] as? [String])?.first }
        XCTAssertEqual(firstHops.count, 4, "\(circuits)")
        XCTAssertEqual(firstHops.filter { $0 == "r1" }.count, 2, "the laptop's circuits are not spread over r1 and r2: \(firstHops)")
        XCTAssertEqual(firstHops.filter { $0 == "r2" }.count, 2, "the laptop's circuits are not spread over r1 and r2: \(firstHops)")
        held.removeAll()
    }

    func test_anUpload_survivesTheLossOfTheClientsRouter_andThenOfTheHostsRouter() throws {
        let net = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/dual-homed-both.yaml")
        network = net
        let size = 1 << 30
        for end in ["dialer", "host"] {
            let circuitPath: () -> [String] = { ((try? net.network())?["circuits"] as? [[String: Any]])?.last?["path"] as? [String] ?? [] }
            var killed: String?
            let digest = try upload(size, through: net) {
                let path = circuitPath()
                guard let router = end == "dialer" ? path.first : path.last, let pid = net.pid(of: router) else { return }
                killed = router
                kill(pid, SIGKILL)
            }
            XCTAssertNotNil(killed, "\(end): no router was killed")
            XCTAssertEqual(digest, expectedDigest(size), "\(end)'s router (\(killed ?? "?")) killed mid-upload: the service received other bytes")
            let audit = try Portless.cli(["audit", "--type", "circuit.rerouted"] + net.profile)
            XCTAssertTrue(audit.contains("reattached by \(end == "dialer" ? "laptop" : "enterprise")"), "\(end): \(audit)")
        }
    }
}
