import Foundation
import XCTest
@testable import Shared

/// Operating networks from topology files: scale, apply, bundle.
final class TopologyOperationsTests: XCTestCase {
    private var networks: [RunningTopology] = []

    override func tearDown() {
        for network in networks { network.down() }
        networks.removeAll()
        super.tearDown()
    }

    private func start(_ file: String) throws -> RunningTopology {
        let network = try RunningTopology(file)
        networks.append(network)
        return network
    }

    func test_scaleTopology_comesUp_andEveryAgentReachesTheService() throws {
        let network = try start("scale.yaml")
        XCTAssertEqual((try network.network()["routers"] as? [String])?.count, 12)
        XCTAssertEqual((try network.network()["links"] as? [[String: Any]])?.count, 66)
        for intercept in (network.status["intercepts"] as? [[String: Any]]) ?? [] {
            guard let address = intercept["address"] as? String, let tunneler = intercept["tunneler"] as? String else { continue }
            let client = try TCPClient(address)
            client.send("GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
            let answer = String(decoding: client.readToEnd().data, as: UTF8.self)
            XCTAssertTrue(answer.contains("caller: \(tunneler)"), answer)
        }
    }

    /// r1 (client edge) reaches r4 (host edge) through r2; applying a file that adds r3 with a
    /// cheaper path makes new circuits take it, and applying it again changes nothing.
    func test_apply_addsARouterThatNewCircuitsUse_andIsIdempotent() throws {
        let mesh = try String(contentsOfFile: Portless.repoRoot + "/topology/mesh.yaml", encoding: .utf8)
        let base = mesh
            .replacingOccurrences(of: "  - name: r3\n    host: mid-2\n", with: "")
            .replacingOccurrences(of: "  - {a: r1, b: r3}\n", with: "")
            .replacingOccurrences(of: "  - {a: r3, b: r4}\n", with: "")
        let scaled = mesh
            .replacingOccurrences(of: "  - {a: r1, b: r2}", with: "  - {a: r1, b: r2, cost: 50}")
        let dir = NSTemporaryDirectory() + "portless-apply-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/topology", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try base.write(toFile: dir + "/base.yaml", atomically: true, encoding: .utf8)
        try scaled.write(toFile: dir + "/scaled.yaml", atomically: true, encoding: .utf8)

        let state = dir + "/state"
        _ = try Portless.cli(["topology", "up", dir + "/base.yaml", "--state", state])
        defer { _ = try? Portless.run("portless", ["topology", "down", "--state", state]) }
        let profile = ["--profile", state + "/profile.json"]
        XCTAssertTrue(try Portless.cli(["topology", "apply", dir + "/base.yaml", "--state", state]).contains("no changes"))

        let applied = try Portless.cli(["topology", "apply", dir + "/scaled.yaml", "--state", state])
        XCTAssertTrue(applied.contains("created router r3"), applied)
        XCTAssertTrue(applied.contains("started router r3"), applied)
        XCTAssertTrue(applied.contains("replaced link r1-r2"), applied)
        XCTAssertTrue(try Portless.cli(["topology", "apply", dir + "/scaled.yaml", "--state", state]).contains("no changes"))

        let address = try Portless.cli(["topology", "status", "--state", state, "--intercept", "hello"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let client = try TCPClient(address)
        client.send("GET /hold HTTP/1.1\r\nHost: demo\r\n\r\n")
        XCTAssertTrue(client.read(until: "holding").contains("holding"))
        let network = try JSONSerialization.jsonObject(with: Data(try Portless.cli(["network"] + profile).utf8)) as? [String: Any]
        let path = ((network?["circuits"] as? [[String: Any]])?.last?["path"] as? [String]) ?? []
        XCTAssertEqual(path, ["r1", "r3", "r4"])
    }

    func test_bundle_writesEachHostItsUnitsConfigsAndWorkingTokens() throws {
        let quickstart = try String(contentsOfFile: Portless.repoRoot + "/topology/quickstart.yaml", encoding: .utf8)
        let placed = quickstart
            .replacingOccurrences(of: "  - name: dmz\n", with: "  - name: dmz\n    address: 192.0.2.10\n")
            .replacingOccurrences(of: "  - name: laptop\n  - name: corp", with: "  - name: laptop\n    address: 192.0.2.20\n  - name: corp\n    address: 192.0.2.30")
        let dir = NSTemporaryDirectory() + "portless-bundle-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try placed.write(toFile: dir + "/multi.yaml", atomically: true, encoding: .utf8)
        let output = try Portless.cli(["topology", "bundle", dir + "/multi.yaml", "--out", dir + "/out"])
        XCTAssertTrue(output.contains("/out/corp"), output)

        let files = Set(FileManager.default.subpaths(atPath: dir + "/out") ?? [])
        for expected in ["dmz/portless-controller.service", "dmz/controller/ca.pem", "dmz/portless-router-edge-1.service",
                         "dmz/routers/edge-1/enroll.jwt", "laptop/tunnelers/laptop/tunnel.yaml", "laptop/portless-tunnel-laptop.service",
                         "corp/tunnelers/enterprise/enroll.jwt", "corp/hello-http.service", "corp/README.md"] {
            XCTAssertTrue(files.contains(expected), "missing \(expected) in \(files.sorted())")
        }
        let unit = try String(contentsOfFile: dir + "/out/dmz/portless-router-edge-1.service", encoding: .utf8)
        XCTAssertTrue(unit.contains("--edge 192.0.2.10:3022") && unit.contains("--metrics 127.0.0.1:9410"), unit)
        // The token is root's; the unit's dynamic user reaches it only as the credential systemd hands it.
        XCTAssertTrue(unit.contains("LoadCredential=enroll.jwt:/etc/portless/routers/edge-1/enroll.jwt"), unit)
        XCTAssertTrue(unit.contains("enroll --token @%d/enroll.jwt --state /var/lib/portless/routers/edge-1"), unit)
        XCTAssertTrue(unit.contains("DynamicUser=yes") && unit.contains("StateDirectory=portless/routers/edge-1"), unit)
        let token = try String(contentsOfFile: dir + "/out/corp/tunnelers/enterprise/enroll.jwt", encoding: .utf8)
        let claims = try SignedToken.unverifiedClaims(token, as: EnrollmentClaims.self)
        XCTAssertEqual(claims.sub, "enterprise")
        XCTAssertEqual(claims.iss, "https://192.0.2.10:1280", "enrollment is over TLS")
        XCTAssertEqual(claims.ctrl, "192.0.2.10:6262")
        let readme = try String(contentsOfFile: dir + "/out/corp/README.md", encoding: .utf8)
        XCTAssertTrue(readme.contains("needs no inbound port"), readme)
        let gateway = try String(contentsOfFile: dir + "/out/corp/tunnelers/enterprise/tunnel.yaml", encoding: .utf8)
        XCTAssertTrue(gateway.contains(#"kind: "mcp-gateway""#), gateway)
        XCTAssertTrue(gateway.contains(#""url":"http://127.0.0.1:18001/mcp""#), gateway)
        XCTAssertTrue(gateway.contains("/etc/portless/mcp/files_server.py"), gateway)
        XCTAssertFalse(try Portless.run("portless", ["topology", "bundle", dir + "/multi.yaml", "--out", dir + "/out"]).status == 0,
                       "bundle must refuse to overwrite")
    }

    /// A bundle of topology/ha.yaml: the provisioned network is a SQL dump the operator loads into
    /// their own PostgreSQL, and each controller's unit reads the database URL as a credential.
    /// Loaded into a fresh database, both bundled controllers run from it and share it.
    func test_bundle_onPostgres_isADumpTheOperatorLoads_andBothControllersRunFromIt() throws {
        let ha = try String(contentsOfFile: Portless.repoRoot + "/topology/ha.yaml", encoding: .utf8)
            .replacingOccurrences(of: "database: postgres\n", with: "database: postgres\nhosts:\n  - name: dc1\n    address: 192.0.2.1\n  - name: dc2\n    address: 192.0.2.2\n")
            .replacingOccurrences(of: "  - name: ctl-a\n", with: "  - name: ctl-a\n    host: dc1\n")
            .replacingOccurrences(of: "  - name: ctl-b\n", with: "  - name: ctl-b\n    host: dc2\n")
        let dir = NSTemporaryDirectory() + "portless-habundle-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let operatorDatabase = LocalPostgres(directory: dir + "/operator-pg")
        var controllers: [Int32] = []
        defer {
            for pid in controllers { kill(pid, SIGKILL) }
            try? operatorDatabase.stop()
            try? FileManager.default.removeItem(atPath: operatorDatabase.socketDirectory)
            try? FileManager.default.removeItem(atPath: dir)
        }
        try ha.write(toFile: dir + "/ha.yaml", atomically: true, encoding: .utf8)
        _ = try Portless.cli(["topology", "bundle", dir + "/ha.yaml", "--out", dir + "/out"])
        let out = dir + "/out"
        for (unit, state) in [("dc1/portless-controller.service", "controller"), ("dc2/portless-controller-ctl-b.service", "controllers/ctl-b")] {
            let text = try String(contentsOfFile: "\(out)/\(unit)", encoding: .utf8)
            XCTAssertTrue(text.contains("LoadCredential=store.url:/etc/portless/store.url"), text)
            XCTAssertTrue(text.contains("run --state /var/lib/portless/\(state) ") && text.contains("--store @%d/store.url"), text)
            let config = try String(contentsOfFile: "\(out)/\(unit.prefix(4))\(state)/controller.json", encoding: .utf8)
            XCTAssertFalse(config.contains("\"store\""), "the bundle's provisioning database stays out of the config: \(config)")
        }
        XCTAssertTrue(try String(contentsOfFile: out + "/dc1/README.md", encoding: .utf8).contains("psql"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/.provisioning-postgres"), "the provisioning cluster is removed")
        let dump = out + "/dc1/portless.sql"
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: dump)[.posixPermissions] as? NSNumber)?.intValue, 0o600)

        // The operator's database: a fresh one, loaded from the dump.
        try operatorDatabase.start()
        try operatorDatabase.createDatabase("network")
        try operatorDatabase.load(dump, into: "network")
        try operatorDatabase.url(database: "network").write(toFile: dir + "/store.url", atomically: true, encoding: .utf8)
        var profiles: [[String]] = []
        for (index, state) in ["dc1/controller", "dc2/controllers/ctl-b"].enumerated() {
            let api = try Portless.freePort(), control = try Portless.freePort()
            controllers.append(try Spawn.start([Portless.binDir + "/portless-controller", "run", "--state", "\(out)/\(state)", "--store", "@" + dir + "/store.url",
                                                "--bind-api", "127.0.0.1:\(api)", "--bind-control", "127.0.0.1:\(control)"], output: dir + "/controller-\(index).log"))
            let profile = ["--profile", dir + "/profile-\(index).json"]
            var loggedIn = false
            for _ in 0..<100 where !loggedIn {
                loggedIn = (try? Portless.run("portless", ["login", "--controller", "https://127.0.0.1:\(api)", "--credential", "\(out)/\(state)/admin.json"] + profile))?.status == 0
                if !loggedIn { usleep(100_000) }
            }
            XCTAssertTrue(loggedIn, "bundled controller \(state) did not come up: \((try? String(contentsOfFile: dir + "/controller-\(index).log", encoding: .utf8)) ?? "")")
            profiles.append(profile)
        }
        guard profiles.count == 2 else { return }
        let provisioned = try Portless.cli(["identity", "list"] + profiles[1])
        XCTAssertTrue(provisioned.contains("laptop") && provisioned.contains("enterprise"), "ctl-b does not see the provisioned network: \(provisioned)")
        _ = try Portless.cli(["identity", "create", "auditor"] + profiles[1])
        XCTAssertTrue(try Portless.cli(["identity", "list"] + profiles[0]).contains("auditor"), "ctl-a does not see what ctl-b created")
    }

    func test_serviceOnAUnixSocket_isHostedWithNoTCPPortAtAll() throws {
        let dir = NSTemporaryDirectory() + "portless-unix-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socket = dir + "/hello.sock"
        let quickstart = try String(contentsOfFile: Portless.repoRoot + "/topology/quickstart.yaml", encoding: .utf8)
        let onUnix = quickstart
            .replacingOccurrences(of: "{topology}", with: Portless.repoRoot + "/topology")
            .replacingOccurrences(of: "command: [portless, demo-http, --listen, \"127.0.0.1:{port}\"]",
                                  with: "command: [portless, demo-http, --listen, \"unix:\(socket)\"]")
            .replacingOccurrences(of: "        app: hello-http\n", with: "        address: unix:\(socket)\n")
        XCTAssertNotEqual(onUnix, quickstart)
        try onUnix.write(toFile: dir + "/unix.yaml", atomically: true, encoding: .utf8)
        let state = dir + "/state"
        _ = try Portless.cli(["topology", "up", dir + "/unix.yaml", "--state", state])
        defer { _ = try? Portless.run("portless", ["topology", "down", "--state", state]) }
        let address = try Portless.cli(["topology", "status", "--state", state, "--intercept", "hello"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let client = try TCPClient(address)
        client.send("GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
        let answer = String(decoding: client.readToEnd().data, as: UTF8.self)
        XCTAssertTrue(answer.contains("caller: laptop"), answer)
    }

    /// `up` returns only once every app it started accepts: an app slower to start than the
    /// mesh must not refuse the first callers of a network that says it is ready.
    func test_up_waitsForASlowApp_soTheFirstRequestIsServed() throws {
        let dir = NSTemporaryDirectory() + "portless-slowapp-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dataplane = try String(contentsOfFile: Portless.repoRoot + "/IntegrationTests/Support/dataplane.yaml", encoding: .utf8)
        let slow = dataplane.replacingOccurrences(
            of: "command: [portless, demo-http, --listen, \"127.0.0.1:{port}\"]",
            with: "command: [/bin/sh, -c, \"sleep 4 && exec $0 demo-http --listen 127.0.0.1:{port}\", \"\(Portless.binDir)/portless\"]")
        XCTAssertNotEqual(slow, dataplane)
        try slow.write(toFile: dir + "/slow.yaml", atomically: true, encoding: .utf8)
        let network = try RunningTopology(path: dir + "/slow.yaml")
        networks.append(network)
        let client = try TCPClient(network.interceptAddress())
        client.send("GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
        let answer = String(decoding: client.readToEnd().data, as: UTF8.self)
        XCTAssertTrue(answer.contains("Hello from the private service"), "the first request after up: \(answer.debugDescription)\n\(network.logTails())")
    }

    /// Every unit of a bundle runs sandboxed: `systemd-analyze security` rates each one "OK" or
    /// better (exposure at most 2.0), where a unit with no sandboxing rates about 9.6, "UNSAFE".
    func test_bundledUnits_areRatedOKBySystemdAnalyzeSecurity() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            throw TestFailure("systemd-analyze is missing: make setup installs the 'systemd' package")
        }
        let mesh = try String(contentsOfFile: Portless.repoRoot + "/topology/mesh.yaml", encoding: .utf8)
        guard let hostsEnd = mesh.range(of: "\ncontroller:") else { throw TestFailure("mesh.yaml has no controller section") }
        var hosts = String(mesh[..<hostsEnd.lowerBound])
        for (index, host) in ["control", "edge-a", "mid-1", "mid-2", "edge-b", "laptop", "corp"].enumerated() {
            hosts = hosts.replacingOccurrences(of: "  - name: \(host)\n", with: "  - name: \(host)\n    address: 192.0.2.\(10 + index)\n")
        }
        let placed = hosts + mesh[hostsEnd.lowerBound...]
        XCTAssertEqual(placed.components(separatedBy: "address: 192.0.2.").count, 8, placed)
        let dir = NSTemporaryDirectory() + "portless-units-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try placed.write(toFile: dir + "/mesh.yaml", atomically: true, encoding: .utf8)
        _ = try Portless.cli(["topology", "bundle", dir + "/mesh.yaml", "--out", dir + "/out"])

        let units = (FileManager.default.subpaths(atPath: dir + "/out") ?? []).filter { $0.hasSuffix(".service") }.sorted()
        XCTAssertGreaterThanOrEqual(units.count, 7, "\(units)")  // controller, four routers, two tunnelers, the app
        for unit in units {
            let rated = try Portless.shell("/usr/bin/systemd-analyze security --offline=true '\(dir)/out/\(unit)' 2>&1")
            guard let line = rated.split(separator: "\n").first(where: { $0.contains("Overall exposure level") }),
                  let score = line.split(separator: ":").last?.split(separator: " ").first.flatMap({ Double($0) }) else {
                XCTFail("\(unit): no rating in \(rated)")
                continue
            }
            XCTAssertLessThanOrEqual(score, 2.0, "\(unit) is rated \(line)")
            let text = try String(contentsOfFile: dir + "/out/" + unit, encoding: .utf8)
            for setting in ["DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                            "UMask=0077", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "StateDirectory=portless/"] {
                XCTAssertTrue(text.contains(setting), "\(unit) lacks \(setting)")
            }
        }
    }

    /// `--log-format json` (here through `PORTLESS_LOG_FORMAT`, which every process inherits):
    /// every line the controller, the router and both tunnelers write is one JSON record.
    func test_jsonLogs_everyLineOfEveryProcessIsARecord() throws {
        let network = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/dataplane.yaml",
                                          environment: ["PORTLESS_LOG_FORMAT": "json"])
        networks.append(network)
        let client = try TCPClient(network.interceptAddress())
        client.send("GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
        XCTAssertTrue(String(decoding: client.readToEnd().data, as: UTF8.self).contains("Hello from the private service"))

        for process in ["controller", "edge-1", "laptop", "enterprise"] {
            let log = try String(contentsOfFile: network.state + "/logs/\(process).log", encoding: .utf8)
            let lines = log.split(separator: "\n")
            XCTAssertFalse(lines.isEmpty, "\(process) logged nothing")
            for line in lines {
                let record = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                XCTAssertNotNil(record?["time"] as? String, "\(process): not a JSON record: \(line)")
                XCTAssertNotNil(record?["level"] as? String, "\(process): \(line)")
                XCTAssertNotNil(record?["message"] as? String, "\(process): \(line)")
            }
            XCTAssertTrue(lines.contains { $0.contains(#""logger":"portless."#) }, "\(process): \(log)")
        }
        let router = try String(contentsOfFile: network.state + "/logs/edge-1.log", encoding: .utf8)
        XCTAssertTrue(router.contains(#""message":"terminator bound""#) && router.contains(#""router":"edge-1""#), router)

        let refused = try Portless.run("portless-router", ["run", "--state", network.state, "--log-format", "yaml"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("yaml") && refused.output.contains("log-format"), refused.output)
    }
}
