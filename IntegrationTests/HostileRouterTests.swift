import Foundation
import XCTest
@testable import Shared

/// The edge router turns hostile (`portless-test-hostile-router`, the real router with a
/// tampering seam): it answers dials as another enrolled identity, forges circuit grants, and
/// forges the end of a stream. Each time the dialing tunneler must refuse, no plaintext may reach
/// either side, and the refusal must be in the audit trail. (IntegrationTests/Support/hostile.yaml)
final class HostileRouterTests: XCTestCase {
    nonisolated(unsafe) static var network: RunningTopology?
    nonisolated(unsafe) static var startError: String?
    /// The router process now serving edge-1 (the genuine one after each test).
    nonisolated(unsafe) static var router: Process?

    override class func setUp() {
        super.setUp()
        do { network = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/hostile.yaml") } catch { startError = "\(error)" }
    }

    override class func tearDown() {
        if let router, router.isRunning { router.terminate(); router.waitUntilExit() }
        network?.down()
        super.tearDown()
    }

    private var net: RunningTopology! { Self.network }  // safe: setUpWithError throws when it is nil

    override func setUpWithError() throws {
        if Self.network == nil { throw TestFailure("topology did not start: \(Self.startError ?? "unknown")") }
    }

    private var routerState: String { net.state + "/routers/edge-1" }
    private var report: String { net.state + "/hostile-report.json" }

    /// Replaces edge-1 by the hostile build in `mode` for `body`, then brings the genuine router back.
    private func withHostileRouter(_ mode: String, _ body: () throws -> Void) throws {
        try replaceRouter(with: "portless-test-hostile-router", [mode])
        defer { try? replaceRouter(with: "portless-router", ["run"]) }
        try waitUntilTheLaptopReconnects()
        try body()
    }

    private func replaceRouter(with program: String, _ leading: [String]) throws {
        if let running = Self.router, running.isRunning {
            running.terminate()
            running.waitUntilExit()
        } else if let pid = net.pid(of: "edge-1"), kill(pid, 0) == 0 {
            kill(pid, SIGTERM)
            for _ in 0..<100 where kill(pid, 0) == 0 { Thread.sleep(forTimeInterval: 0.05) }
        }
        guard let edge = port("router/edge-1/edge"), let link = port("router/edge-1/link") else { throw TestFailure("no router addresses") }
        try? FileManager.default.removeItem(atPath: report)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Portless.binDir + "/" + program)
        process.arguments = leading + ["--state", routerState, "--edge", edge, "--link", link]
        process.environment = ProcessInfo.processInfo.environment.merging(["PORTLESS_HOSTILE_REPORT": report]) { $1 }
        let log = FileHandle(forWritingAtPath: net.state + "/logs/edge-1.log") ?? FileHandle.nullDevice
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        Self.router = process
    }

    private func port(_ key: String) -> String? {
        guard let data = FileManager.default.contents(atPath: net.state + "/topology.json"),
              let record = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return (record["ports"] as? [String: String])?[key]
    }

    /// The laptop tunneler has found the router again: a circuit can be set up (whatever happens to it).
    private func waitUntilTheLaptopReconnects() throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let network = (try? net.network()) ?? [:]
            if (network["routers"] as? [String])?.contains("edge-1") == true,
               (network["terminators"] as? [[String: Any]])?.isEmpty == false { Thread.sleep(forTimeInterval: 1.5); return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw TestFailure("edge-1 did not come back")
    }

    private func hostileReport() -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: report) else { return [:] }
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    private func serviceLog() -> String {
        (try? String(contentsOfFile: net.state + "/logs/hello-http.log", encoding: .utf8)) ?? ""
    }

    private func refusals(by identity: String) throws -> [String] {
        let listing = try Portless.cli(["audit", "--type", "circuit.refused", "--identity", identity, "--limit", "100"] + net.profile)
        let events = (try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[String: Any]]) ?? []
        return events.compactMap { $0["detail"] as? String }
    }

    private func eventually(_ seconds: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return try condition()
    }

    /// A GET through the laptop's intercept; what came back, and how the connection ended.
    private func request(_ path: String) throws -> (bytes: [UInt8], ending: TCPClient.Ending) {
        let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 30)
        client.send("GET \(path) HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        return client.readUntilClosed()
    }

    // MARK: the attacks

    func test_aRouterAnsweringAsAnotherEnrolledIdentity_isRefusedByTheDialer_andNothingLeaks() throws {
        let secret = "/secret-\(UUID().uuidString)"
        let before = try refusals(by: "laptop").count
        try withHostileRouter("impersonate-host:\(net.state)/tunnelers/mallory/identity") {
            let (bytes, ending) = try request(secret)
            XCTAssertFalse(String(decoding: bytes, as: UTF8.self).contains("HTTP/1.1"), "no answer may come from the impostor")
            XCTAssertEqual(ending, .reset, "the client sees its connection reset, not a clean end")
            XCTAssertTrue(eventually(5) { (self.hostileReport()["hellosAnswered"] as? Int ?? 0) > 0 }, "the attack was tried: \(hostileReport())")
            XCTAssertEqual(hostileReport()["dialerDataFrames"] as? Int, 0, "the dialer sent nothing to the impostor")
            XCTAssertTrue(try eventually(5) { try self.refusals(by: "laptop").count > before }, "the refusal is in the audit trail")
            let reason = try refusals(by: "laptop").last ?? ""
            XCTAssertTrue(reason.contains("mallory"), "the audit names the impostor: \(reason)")
        }
        XCTAssertFalse(serviceLog().contains(secret), "the private service saw nothing of the request")
    }

    func test_aRouterForgingTheCircuitGrant_isRefusedByTheDialer_andNothingLeaks() throws {
        let secret = "/secret-\(UUID().uuidString)"
        let before = try refusals(by: "laptop").count
        try withHostileRouter("forge-grant:\(net.state)/tunnelers/mallory/identity") {
            let (bytes, ending) = try request(secret)
            XCTAssertTrue(bytes.isEmpty, "nothing comes back: \(String(decoding: bytes, as: UTF8.self))")
            XCTAssertEqual(ending, .reset)
            XCTAssertTrue(eventually(5) { (self.hostileReport()["grantsForged"] as? Int ?? 0) > 0 }, "\(hostileReport())")
            XCTAssertEqual(hostileReport()["dialerDataFrames"] as? Int, 0)
            XCTAssertTrue(try eventually(5) { try self.refusals(by: "laptop").count > before })
            let reason = try refusals(by: "laptop").last ?? ""
            XCTAssertTrue(reason.contains("signature"), reason)
        }
        XCTAssertFalse(serviceLog().contains(secret))
    }

    func test_aRouterForgingTheEndOfAStream_resetsTheClient_neverACleanTruncatedEnd() throws {
        let size = 8 << 20
        try withHostileRouter("truncate") {
            let (bytes, ending) = try request("/bytes?n=\(size)")
            XCTAssertTrue(eventually(5) { (self.hostileReport()["endsForged"] as? Int ?? 0) > 0 }, "\(hostileReport())")
            XCTAssertLessThan(bytes.count, size, "the router cut the stream")
            XCTAssertEqual(ending, .reset, "a forged end must reach the application as an error, not as a clean end of a shorter stream")
        }
    }

    func test_aDialerThatNeverCompletesItsHandshake_isCutOff_andThePrivateServiceConnectionIsClosed() throws {
        guard let service = net.appAddress("hello-http") else { throw TestFailure("no service address") }
        let before = try refusals(by: "enterprise").count
        try withHostileRouter("stall-hello") {
            let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 30)
            client.send("GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
            // The host connected to its private service for the circuit, and waits for a hello that never comes.
            XCTAssertTrue(eventually(5) { (try? self.connections(to: service)) ?? 0 > 0 }, "the host opened the service connection")
            let (bytes, ending) = client.readUntilClosed()
            XCTAssertTrue(bytes.isEmpty)
            XCTAssertEqual(ending, .reset)
            XCTAssertTrue(eventually(15) { (try? self.connections(to: service)) == 0 }, "the private service's connection was closed")
            XCTAssertTrue(try eventually(5) { try self.refusals(by: "enterprise").count > before })
            let reason = try refusals(by: "enterprise").last ?? ""
            XCTAssertTrue(reason.contains("did not complete within 10 s"), reason)
        }
    }

    func test_dataAheadOfTheDialersHello_isRefusedByTheHost_andNeverReachesTheService() throws {
        let secret = "/secret-\(UUID().uuidString)"
        let before = try refusals(by: "enterprise").count
        try withHostileRouter("drop-dialer-hello") {
            let (bytes, ending) = try request(secret)
            XCTAssertTrue(bytes.isEmpty, "nothing comes back: \(String(decoding: bytes, as: UTF8.self))")
            XCTAssertEqual(ending, .reset)
            XCTAssertTrue(eventually(5) { (self.hostileReport()["hellosWithheld"] as? Int ?? 0) > 0 }, "\(hostileReport())")
            XCTAssertTrue(try eventually(5) { try self.refusals(by: "enterprise").count > before }, "the host's refusal is in the audit trail")
            let reason = try refusals(by: "enterprise").last ?? ""
            XCTAssertTrue(reason.contains("before the peer's end-to-end hello"), reason)
        }
        XCTAssertFalse(serviceLog().contains(secret), "the private service saw nothing of the request")
    }

    /// Established TCP connections to `address` on this machine.
    private func connections(to address: String) throws -> Int {
        let output = try Portless.shell("ss -Htn state established dst \(address) 2>/dev/null")
        return output.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
    }

    func test_z_theGenuineRouter_servesAgain() throws {
        try waitUntilTheLaptopReconnects()
        let (bytes, ending) = try request("/")
        XCTAssertTrue(String(decoding: bytes, as: UTF8.self).contains("caller: laptop"), String(decoding: bytes, as: UTF8.self))
        XCTAssertEqual(ending, .eof)
    }
}
