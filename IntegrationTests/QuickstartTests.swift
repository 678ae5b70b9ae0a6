import Crypto
import Foundation
import Logging
import XCTest
@testable import Shared

/// Real processes from topology/quickstart.yaml: controller, router, two tunnelers, the demo service.
final class QuickstartTests: XCTestCase {
    nonisolated(unsafe) static var network: RunningTopology?
    nonisolated(unsafe) static var startError: String?
    nonisolated(unsafe) static var restartedController: Process?

    override class func setUp() {
        super.setUp()
        do { network = try RunningTopology("quickstart.yaml") } catch { startError = "\(error)" }
    }

    override class func tearDown() {
        if let controller = restartedController, controller.isRunning { controller.terminate(); controller.waitUntilExit() }
        network?.down()
        super.tearDown()
    }

    private var net: RunningTopology! { Self.network }  // safe: setUpWithError throws when it is nil

    override func setUpWithError() throws {
        if Self.network == nil { throw TestFailure("topology did not start: \(Self.startError ?? "unknown")") }
    }

    private var interceptAddress: String { net.interceptAddress() }
    private func pid(of name: String) -> Int32? { net.pid(of: name) }
    private var profile: [String] { net.profile }
    private func get(_ path: String) throws -> (head: String, body: [UInt8]) { try net.get(path) }

    func test_httpRequest_crossesTheOverlay_andTheServiceKnowsTheVerifiedCaller() throws {
        let (head, body) = try get("/")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
        let text = String(decoding: body, as: UTF8.self)
        XCTAssertTrue(text.contains("Hello from the private service"), text)
        XCTAssertTrue(text.contains("caller: laptop"), "PROXY v2 identity missing: \(text)")
    }

    func test_64MiBTransfer_arrivesIntact() throws {
        let size = 64 << 20
        let client = try TCPClient(interceptAddress, timeoutSeconds: 60)
        client.send("GET /bytes?n=\(size) HTTP/1.1\r\nHost: demo\r\n\r\n")
        let (count, digest, closed) = client.readHashedBody()
        XCTAssertTrue(closed)
        XCTAssertEqual(count, size)
        XCTAssertEqual(digest, DemoPayload.digest(of: size))
    }

    func test_clientThatHalfClosesAfterItsRequest_stillReceivesTheWholeResponse() throws {
        let size = 4 << 20
        let client = try TCPClient(interceptAddress, timeoutSeconds: 30)
        client.send("GET /bytes?n=\(size) HTTP/1.1\r\nHost: demo\r\n\r\n")
        client.shutdownWrite()
        let (data, closed) = client.readToEnd()
        XCTAssertTrue(closed)
        guard let split = data.firstRange(of: [13, 10, 13, 10]) else { return XCTFail("no response") }
        XCTAssertEqual(data.count - split.upperBound, size)
    }

    func test_identityWithoutDialPolicy_getsAClearError() throws {
        let dir = net.state + "/outsider"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try Portless.cli(["identity", "create", "outsider", "--roles", "strangers", "--jwt", dir + "/enroll.jwt"] + profile)
        let enrolled = try Portless.run("portless-tunnel", ["enroll", "--token", "@" + dir + "/enroll.jwt", "--state", dir + "/identity"])
        XCTAssertEqual(enrolled.status, 0, enrolled.output)
        let port = try Portless.freePort()
        try "{\"identity\": \"\(dir)/identity\", \"intercepts\": [{\"service\": \"hello\", \"listen\": \"127.0.0.1:\(port)\"}]}"
            .write(toFile: dir + "/tunnel.json", atomically: true, encoding: .utf8)
        let tunnel = Process()
        tunnel.executableURL = URL(fileURLWithPath: Portless.binDir + "/portless-tunnel")
        tunnel.arguments = ["run", "--config", dir + "/tunnel.json"]
        FileManager.default.createFile(atPath: dir + "/tunnel.log", contents: nil)
        guard let log = FileHandle(forWritingAtPath: dir + "/tunnel.log") else { throw TestFailure("cannot open the tunnel log") }
        tunnel.standardError = log
        tunnel.standardOutput = log
        try tunnel.run()
        defer { tunnel.terminate(); tunnel.waitUntilExit() }

        // Wait until the outsider's tunneler has its API session, so the refusal is the policy's.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !((try? String(contentsOfFile: dir + "/tunnel.log", encoding: .utf8)) ?? "").contains("no Dial permission") {
            usleep(100_000)
        }
        let client = try TCPClient("127.0.0.1:\(port)")
        client.send("GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
        let (data, eof) = client.readToEnd()
        XCTAssertTrue(eof, "connection should be closed")
        XCTAssertTrue(data.isEmpty, "no byte of the service may reach an identity without Dial")
        usleep(300_000)
        let logText = (try? String(contentsOfFile: dir + "/tunnel.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(logText.contains("has no Dial policy for service 'hello'"), logText)
    }

    func test_garbageAndOversizeFrames_leaveTheRouterRunningAndServing() throws {
        let routers = try Portless.cli(["router", "list"] + profile)
        guard let records = try JSONSerialization.jsonObject(with: Data(routers.utf8)) as? [[String: Any]],
              let edge = records.first?["edgeAddress"] as? String else { throw TestFailure("no router address in \(routers)") }

        let garbage = try TCPClient(edge)
        garbage.send((0..<4096).map { _ in UInt8.random(in: 0...255) })
        XCTAssertTrue(garbage.readToEnd().eof, "router should close a connection that is not TLS")

        // A correctly authenticated peer that sends a frame over the router's limit is cut off.
        let credentials = TLSCredentials(certificatePEM: try String(contentsOfFile: net.state + "/tunnelers/laptop/identity/identity.pem", encoding: .utf8),
                                         privateKeyPEM: try String(contentsOfFile: net.state + "/tunnelers/laptop/identity/identity.key", encoding: .utf8),
                                         caPEM: try String(contentsOfFile: net.state + "/tunnelers/laptop/identity/ca.pem", encoding: .utf8))
        let loop = try EventLoop.startThread(name: "oversize")
        defer { loop.stop() }
        let closed = expectation(description: "router closed the oversize sender")
        let address = try SocketAddress(parsing: edge)
        let context = try TLSContext(server: false, credentials: credentials)
        loop.execute {
            FramedChannel.connect(loop: loop, to: address, context: context, maxFrame: 4 << 20) { result in
                guard case .success(let channel) = result else { return }
                channel.onReady = { _ in
                    channel.send(.control, body: [UInt8](repeating: 0x41, count: 1 << 20))
                }
                channel.onClose = { _ in closed.fulfill() }
            }
        }
        wait(for: [closed], timeout: 20)

        if let router = pid(of: "edge-1") { XCTAssertEqual(kill(router, 0), 0, "router died") }
        let (head, _) = try get("/")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200"), head)
    }

    func test_enterpriseTunneler_listensOnNoNetworkSocket() throws {
        guard let pid = pid(of: "enterprise") else { throw TestFailure("no enterprise pid") }
        let listening = try listeningSockets(of: pid)
        for address in listening {
            XCTAssertTrue(address.hasPrefix("127.") || address == "::1", "enterprise tunneler listens on \(address)")
        }
    }

    /// Runs late (alphabetical): it stops the controller and starts it again.
    func test_zy_controllerDown_liveTransferCompletes_andDialsResumeWhenItReturns() throws {
        guard let controllerPID = pid(of: "controller") else { throw TestFailure("no controller pid") }
        let size = 16 << 20
        let client = try TCPClient(interceptAddress, timeoutSeconds: 60)
        client.send("GET /bytes?n=\(size) HTTP/1.1\r\nHost: demo\r\n\r\n")
        XCTAssertTrue(client.read(until: "\r\n\r\n").contains("200 OK"))
        kill(controllerPID, SIGKILL)
        var status: Int32 = 0
        waitpid(controllerPID, &status, 0)
        let stopped = Date()
        // Half the transfer now, the rest only once the controller has been away ten seconds: the
        // circuit must carry it all through the outage.
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        func read(until target: Int) {
            while received < target {
                let n = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                received += n
            }
        }
        read(until: size / 2)
        let away = Date().timeIntervalSince(stopped)
        if away < 10 { Thread.sleep(forTimeInterval: 10 - away) }
        read(until: size - (1 << 20))
        XCTAssertGreaterThan(received, size - (2 << 20), "the live circuit stopped with the controller")

        let controller = Process()
        controller.executableURL = URL(fileURLWithPath: Portless.binDir + "/portless-controller")
        controller.arguments = ["run", "--state", net.state + "/controller"]
        let log = FileHandle(forWritingAtPath: net.state + "/logs/controller.log")
        log?.seekToEndOfFile()
        controller.standardOutput = log
        controller.standardError = log
        try controller.run()
        Self.restartedController = controller
        let returned = Date()
        var answered = false
        while Date().timeIntervalSince(returned) < 10, !answered {
            if let (head, body) = try? get("/"), head.hasPrefix("HTTP/1.1 200"), String(decoding: body, as: UTF8.self).contains("caller: laptop") {
                answered = true
            } else {
                usleep(100_000)
            }
        }
        XCTAssertTrue(answered, "no dial succeeded after the controller returned")
        XCTAssertLessThan(Date().timeIntervalSince(returned), 5, "dials resumed only after 5 s")
    }

    /// Runs last among these (alphabetical): it deletes and then restores the Dial policy.
    func test_zz_deletingTheDialPolicy_closesTheLiveCircuitWithinTwoSeconds() throws {
        let client = try TCPClient(interceptAddress, timeoutSeconds: 10)
        client.send("GET /hold HTTP/1.1\r\nHost: demo\r\n\r\n")
        XCTAssertTrue(client.read(until: "holding").contains("holding"))
        let start = Date()
        _ = try Portless.cli(["policy", "delete", "service", "clients-dial-demo"] + profile)
        let (_, eof) = client.readToEnd()
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertTrue(eof, "circuit was not closed")
        XCTAssertLessThan(elapsed, 2.0, "circuit closed after \(elapsed) s")
        _ = try Portless.cli(["policy", "create-service", "clients-dial-demo", "--type", "dial", "--identities", "#clients", "--services", "#demo"] + profile)
        let audit = try Portless.cli(["audit", "--type", "session.revoked"] + profile)
        XCTAssertTrue(audit.contains("laptop"), audit)
        let laptop = try Portless.cli(["audit", "--identity", "laptop", "--type", "circuit.opened", "--limit", "1000"] + profile)
        XCTAssertTrue(laptop.contains("host=enterprise"), laptop)
        XCTAssertFalse(laptop.contains("\"identity\" : \"enterprise\""), "the identity filter let another identity through")
        XCTAssertTrue(try Portless.cli(["audit", "--verify"] + profile).contains("intact"))
    }

    /// Local addresses of the listening TCP sockets a process holds (from /proc).
    private func listeningSockets(of pid: Int32) throws -> [String] {
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        var inodes = Set<String>()
        for fd in fds {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"), target.hasPrefix("socket:[") {
                inodes.insert(String(target.dropFirst(8).dropLast()))
            }
        }
        var result: [String] = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = (try? String(contentsOfFile: table, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) else { continue }
                let hex = fields[1].split(separator: ":")[0]
                if hex.count == 8, let value = UInt32(hex, radix: 16) {
                    result.append("\(value & 0xFF).\((value >> 8) & 0xFF).\((value >> 16) & 0xFF).\(value >> 24)")
                } else {
                    result.append(hex == "00000000000000000000000001000000" ? "::1" : String(hex))
                }
            }
        }
        return result
    }
}
