import Crypto
import Foundation
import XCTest
@testable import Shared

/// topology/ha.yaml: two controllers, both active, on one PostgreSQL database that `topology up`
/// starts for the network. A change made through either reaches the routers and tunnelers of
/// the other; killing one in the middle of a transfer loses nothing, and the tunnelers move to
/// the other; the killed one rejoins when restarted.
final class HighAvailabilityTests: XCTestCase {
    private var network: RunningTopology?
    private var restarted: Int32?

    override func tearDown() {
        if let restarted { kill(restarted, SIGKILL) }
        network?.down()
        super.tearDown()
    }

    /// A profile for the second controller: the same admin login (sessions live in the database).
    private func profile(of net: RunningTopology, controller index: Int) throws -> [String] {
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: net.state + "/topology.json"))) as? [String: Any]
        guard let urls = record?["controllers"] as? [String], urls.count > index,
              var profile = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: net.state + "/profile.json"))) as? [String: Any]
        else { throw TestFailure("no controller \(index) in \(net.state)/topology.json") }
        profile["controller"] = urls[index]
        let path = net.state + "/profile-\(index).json"
        try JSONSerialization.data(withJSONObject: profile).write(to: URL(fileURLWithPath: path))
        return ["--profile", path]
    }

    private func network(_ profile: [String]) throws -> [String: Any] {
        let json = try Portless.cli(["network"] + profile)
        return (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]) ?? [:]
    }

    private func dials(_ net: RunningTopology) -> Bool {
        guard let client = try? TCPClient(net.interceptAddress(), timeoutSeconds: 5) else { return false }
        client.send("GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        return String(decoding: client.readToEnd().data, as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }

    /// Polls `condition` for up to `seconds`; returns how long it took, or nil if it never held.
    private func within(_ seconds: TimeInterval, _ condition: () throws -> Bool) rethrows -> TimeInterval? {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if try condition() { return Date().timeIntervalSince(start) }
            usleep(20_000)
        }
        return nil
    }

    private func step(_ text: String) {
        FileHandle.standardError.write(Data("HighAvailabilityTests: \(text)\n".utf8))
    }

    func test_twoControllers_shareChanges_surviveTheLossOfOne_andRejoin() throws {
        let net = try RunningTopology("ha.yaml")
        network = net
        let a = net.profile, b = try profile(of: net, controller: 1)
        XCTAssertTrue(dials(net), "the network does not carry a first request:\n\(net.logTails())")
        // Enrollment told every router and tunneler both controllers.
        for directory in ["routers/r1", "routers/r2", "tunnelers/laptop/identity", "tunnelers/enterprise/identity"] {
            let known = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: "\(net.state)/\(directory)/controllers.json")))
            XCTAssertEqual(known.count, 2, "\(directory) knows \(known)")
        }
        // Every router holds a channel to both controllers.
        XCTAssertNotNil(try within(10) { (try network(b)["routers"] as? [String])?.sorted() == ["r1", "r2"] }, "routers never reached ctl-b")

        // A change through ctl-b is enforced by ctl-a, whose tunnelers these are.
        _ = try Portless.cli(["policy", "delete", "service", "clients-dial-demo"] + b)
        let revoked = within(10) { !dials(net) }
        XCTAssertNotNil(revoked, "a dial policy deleted through ctl-b still lets the laptop in through ctl-a")
        _ = try Portless.cli(["policy", "create-service", "clients-dial-demo", "--type", "dial", "--identities", "#clients", "--services", "#demo"] + b)
        let granted = within(10) { dials(net) }
        XCTAssertNotNil(granted, "a dial policy created through ctl-b is not honoured through ctl-a:\n\(net.logTails())")
        step("change through ctl-b enforced through ctl-a: revoked after \(revoked ?? -1) s, granted after \(granted ?? -1) s")

        // SIGKILL ctl-a in the middle of 1 GiB: the transfer completes, new dials go through ctl-b.
        guard let controllerA = net.pid(of: "controller") else { throw TestFailure("no pid for ctl-a") }
        let size = 1 << 30
        let client = try TCPClient(net.interceptAddress(), timeoutSeconds: 60)
        client.send("GET /bytes?n=\(size) HTTP/1.1\r\nHost: demo\r\n\r\n")
        var killedAt: Date?
        var newDialAfter: TimeInterval?
        let (body, digest, closed) = client.readHashedBody { received in
            guard killedAt == nil, received >= 64 << 20 else { return }
            kill(controllerA, SIGKILL)
            killedAt = Date()
            newDialAfter = within(20) { dials(net) }
        }
        var status: Int32 = 0
        waitpid(controllerA, &status, 0)
        XCTAssertNotNil(killedAt)
        XCTAssertTrue(closed, "the transfer did not finish")
        XCTAssertEqual(body, size, "bytes lost or added when ctl-a died")
        XCTAssertEqual(digest, DemoPayload.digest(of: size))
        XCTAssertNotNil(newDialAfter, "no new dial after ctl-a died:\n\(net.logTails())")
        step("failover: a new dial succeeded \(newDialAfter ?? -1) s after ctl-a was killed")
        let moved = try within(15) { Set((try network(b)["clients"] as? [String]) ?? []) == ["enterprise", "laptop"] }
        XCTAssertNotNil(moved, "the tunnelers did not move to ctl-b: \((try? network(b)) ?? [:])")
        XCTAssertEqual((try network(b)["routers"] as? [String])?.sorted(), ["r1", "r2"])

        // ctl-a restarted rejoins: the routers come back to it, and a change through it reaches
        // the tunnelers, now on ctl-b.
        let log = net.state + "/logs/controller-restarted.log"
        restarted = try Spawn.start([Portless.binDir + "/portless-controller", "run", "--state", net.state + "/controller"], output: log)
        XCTAssertNotNil(within(20) { (try? network(a)["routers"] as? [String])??.sorted() == ["r1", "r2"] },
                        "the routers did not come back to the restarted ctl-a")
        _ = try Portless.cli(["policy", "delete", "service", "clients-dial-demo"] + a)
        XCTAssertNotNil(within(10) { !dials(net) }, "a policy deleted through the restarted ctl-a is not enforced through ctl-b")
        _ = try Portless.cli(["policy", "create-service", "clients-dial-demo", "--type", "dial", "--identities", "#clients", "--services", "#demo"] + a)
        XCTAssertNotNil(within(10) { dials(net) }, "a policy created through the restarted ctl-a is not honoured through ctl-b")

        // One audit trail, written by both, still verifies.
        let verify = try Portless.run("portless", ["audit", "--verify"] + b)
        XCTAssertEqual(verify.status, 0, verify.output)

        // A controller taken out of service for good: the routers stop dialing it.
        let listed = try Portless.cli(["controller", "list"] + b)
        XCTAssertTrue(listed.contains("ctl-a") && listed.contains("ctl-b"), listed)
        let own = try Portless.run("portless", ["controller", "remove", "ctl-b"] + b)
        XCTAssertNotEqual(own.status, 0, "a controller removed itself")
        XCTAssertTrue(own.output.contains("the controller answering"), own.output)
        if let restarted { kill(restarted, SIGKILL) }
        restarted = nil
        _ = try Portless.cli(["controller", "remove", "ctl-a"] + b)
        let routersForget = within(10) {
            let known = try? JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: net.state + "/routers/r1/controllers.json")))
            return known?.count == 1
        }
        XCTAssertNotNil(routersForget, "r1 still dials the removed controller")
        XCTAssertTrue(dials(net), "the network stopped carrying requests after a controller was removed")
    }

    /// `controller: {store: postgres}`: one controller on the PostgreSQL server `up` starts;
    /// `down` stops that server too.
    func test_oneControllerOnPostgres_servesAndDownStopsItsDatabase() throws {
        let file = NSTemporaryDirectory() + "portless-pg1-\(UUID().uuidString.prefix(8)).yaml"
        let ha = try String(contentsOfFile: Portless.repoRoot + "/topology/ha.yaml", encoding: .utf8)
            .replacingOccurrences(of: "database: postgres\n\ncontrollers:\n  - name: ctl-a\n  - name: ctl-b\n", with: "controller:\n  store: postgres\n")
        XCTAssertTrue(ha.contains("store: postgres"), "ha.yaml changed shape")
        try ha.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let net = try RunningTopology(path: file)
        network = net
        XCTAssertTrue(dials(net), "one controller on PostgreSQL does not carry a request:\n\(net.logTails())")
        XCTAssertTrue(try String(contentsOfFile: net.state + "/logs/controller.log", encoding: .utf8).contains("store=postgresql"))
        let postgres = LocalPostgres(directory: net.state + "/postgres")
        XCTAssertTrue(postgres.isRunning)
        // PostgreSQL away: the API says so (503, the reason), the controller stays up, and serves again once it is back.
        try postgres.stop()
        let away = try Portless.run("portless", ["identity", "list"] + net.profile)
        XCTAssertNotEqual(away.status, 0)
        XCTAssertTrue(away.output.contains("503") && away.output.contains("PostgreSQL"), away.output)
        try postgres.start()
        XCTAssertTrue(try Portless.cli(["identity", "list"] + net.profile).contains("laptop"), "the controller did not recover from PostgreSQL's restart")
        let pidFile = try String(contentsOfFile: postgres.dataDirectory + "/postmaster.pid", encoding: .utf8)
        let server = try XCTUnwrap(pidFile.split(separator: "\n").first.flatMap { Int32($0) })
        net.down()
        network = nil
        let stat = (try? String(contentsOfFile: "/proc/\(server)/stat", encoding: .utf8)) ?? ""
        XCTAssertTrue(stat.isEmpty || stat.contains(") Z "), "topology down left the network's PostgreSQL running: \(stat)")
    }
}
