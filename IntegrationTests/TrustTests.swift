import Foundation
import XCTest
@testable import Shared

/// Certificates, TLS and the controller's ledgers under attack (IntegrationTests/Support/trust.yaml):
/// a management API reached without TLS or through an impostor, an enrollee pointed at another
/// controller, revoked and replaced certificates, a deleted router, forged usage, and an identity
/// opening more circuits than it may.
final class TrustTests: XCTestCase {
    nonisolated(unsafe) static var network: RunningTopology?
    nonisolated(unsafe) static var startError: String?
    /// Processes a test started by hand; they go with the class.
    nonisolated(unsafe) static var started: [Process] = []

    override class func setUp() {
        super.setUp()
        do { network = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/trust.yaml") } catch { startError = "\(error)" }
    }

    override class func tearDown() {
        for process in started where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        network?.down()
        super.tearDown()
    }

    private var net: RunningTopology! { Self.network }  // safe: setUpWithError throws when it is nil

    override func setUpWithError() throws {
        if Self.network == nil { throw TestFailure("topology did not start: \(Self.startError ?? "unknown")") }
    }

    private var apiURL: String {
        let profile = (try? Files.readJSON([String: String].self, from: net.state + "/profile.json")) ?? [:]
        return profile["controller"] ?? ""
    }

    private func intercept(of tunneler: String) -> String {
        ((net.status["intercepts"] as? [[String: Any]])?.first { $0["tunneler"] as? String == tunneler }?["address"] as? String) ?? ""
    }

    /// A GET through `tunneler`'s intercept: the answer, and how the connection ended.
    private func request(_ path: String, via tunneler: String) throws -> (text: String, ending: TCPClient.Ending) {
        let client = try TCPClient(intercept(of: tunneler), timeoutSeconds: 20)
        client.send("GET \(path) HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        let (bytes, ending) = client.readUntilClosed()
        return (String(decoding: bytes, as: UTF8.self), ending)
    }

    private func log(_ name: String) -> String {
        (try? String(contentsOfFile: net.state + "/logs/\(name).log", encoding: .utf8)) ?? ""
    }

    private func eventually(_ seconds: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return try condition()
    }

    private func start(_ program: String, _ arguments: [String], log name: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : Portless.binDir + "/" + program)
        process.arguments = arguments
        FileManager.default.createFile(atPath: net.state + "/logs/\(name).log", contents: nil)
        let output = FileHandle(forWritingAtPath: net.state + "/logs/\(name).log") ?? FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
        Self.started.append(process)
        return process
    }

    /// Connects to `address` with TLS, presenting the certificate in `identityDirectory` (as its
    /// holder would, or a thief); the far side decides.
    private func presentCertificate(of identityDirectory: String, to address: String) throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        probe.arguments = ["s_client", "-connect", address, "-cert", identityDirectory + "/identity.pem", "-key", identityDirectory + "/identity.key",
                           "-CAfile", identityDirectory + "/ca.pem", "-quiet"]
        probe.standardInput = FileHandle.nullDevice
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        let deadline = Date().addingTimeInterval(5)
        while probe.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if probe.isRunning { probe.terminate() }
        probe.waitUntilExit()
    }

    private func port(_ key: String) -> String {
        guard let data = FileManager.default.contents(atPath: net.state + "/topology.json"),
              let record = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return "" }
        return (record["ports"] as? [String: String])?[key] ?? ""
    }

    // MARK: TLS

    func test_theManagementAPI_isServedOverTLSOnly() throws {
        let address = apiURL.replacingOccurrences(of: "https://", with: "")
        let plain = try TCPClient(address, timeoutSeconds: 5)
        plain.send("GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let answer = String(decoding: plain.readToEnd().data, as: UTF8.self)
        XCTAssertFalse(answer.contains("HTTP/1.1 200"), "plain HTTP must not be served: \(answer)")
        let refused = try Portless.run("portless", ["login", "--controller", "http://\(address)", "--credential", net.state + "/controller/admin.json",
                                                    "--profile", net.state + "/other-profile.json"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("served over TLS only"), refused.output)
    }

    func test_theCLI_refusesAControllerItCannotVerify() throws {
        // Another network's CA: the real controller's certificate does not chain to it.
        let other = net.state + "/other-network"
        _ = try Portless.run("portless-controller", ["init", "--state", other, "--api", "127.0.0.1:1", "--control", "127.0.0.1:2"])
        let wrongCA = try Portless.run("portless", ["login", "--controller", apiURL, "--ca", other + "/ca.pem", "--password", "x",
                                                    "--profile", net.state + "/other-profile.json"])
        XCTAssertNotEqual(wrongCA.status, 0)
        XCTAssertTrue(wrongCA.output.contains("certificate rejected"), wrongCA.output)

        // A TLS server holding a router's certificate from this very CA is not the controller.
        let port = try Portless.freePort()
        let router = net.state + "/routers/edge-1"
        let impostor = try start("/usr/bin/openssl", ["s_server", "-quiet", "-accept", "127.0.0.1:\(port)", "-cert", router + "/identity.pem",
                                                      "-key", router + "/identity.key", "-www"], log: "openssl-impostor")
        defer { impostor.terminate() }
        XCTAssertTrue(eventually(10) { (try? TCPClient("127.0.0.1:\(port)", timeoutSeconds: 1)) != nil })
        let routerCertificate = try Portless.run("portless", ["login", "--controller", "https://127.0.0.1:\(port)", "--ca", net.state + "/controller/ca.pem",
                                                              "--password", "x", "--profile", net.state + "/other-profile.json"])
        XCTAssertNotEqual(routerCertificate.status, 0)
        XCTAssertTrue(routerCertificate.output.contains("is not this network's controller"), routerCertificate.output)
    }

    func test_anEnrollee_refusesAControllerWhoseCAIsNotTheOneInItsToken() throws {
        _ = try Portless.cli(["identity", "create", "newcomer", "--roles", "clients", "--jwt", net.state + "/newcomer.jwt"] + net.profile)
        let token = try Files.read(net.state + "/newcomer.jwt").trimmingCharacters(in: .whitespacesAndNewlines)
        // An impostor controller (another network) where the token's controller should be.
        let impostorState = net.state + "/impostor"
        let port = try Portless.freePort()
        _ = try Portless.run("portless-controller", ["init", "--state", impostorState, "--api", "127.0.0.1:\(port)", "--control", "127.0.0.1:\(try Portless.freePort())"])
        _ = try start("portless-controller", ["run", "--state", impostorState], log: "impostor-controller")
        XCTAssertTrue(eventually(15) { (try? TCPClient("127.0.0.1:\(port)", timeoutSeconds: 1)) != nil })
        // Point the token at it (an attacker on the path achieves the same by answering for the real address).
        var parts = token.split(separator: ".").map(String.init)
        var claims = try JSONSerialization.jsonObject(with: Base64URL.decode(parts[1]) ?? Data()) as? [String: Any] ?? [:]
        claims["iss"] = "https://127.0.0.1:\(port)"
        parts[1] = Base64URL.encode(try JSONSerialization.data(withJSONObject: claims))
        try parts.joined(separator: ".").write(toFile: net.state + "/redirected.jwt", atomically: true, encoding: .utf8)
        let redirected = try Portless.run("portless-tunnel", ["enroll", "--token", "@" + net.state + "/redirected.jwt", "--state", net.state + "/newcomer-a"])
        XCTAssertNotEqual(redirected.status, 0)
        XCTAssertTrue(redirected.output.contains("is not the one named in the token"), redirected.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: net.state + "/newcomer-a/identity.key"), "nothing is kept from an impostor")
        // The token itself was never spent: it enrolls with the real controller.
        let genuine = try Portless.run("portless-tunnel", ["enroll", "--token", "@" + net.state + "/newcomer.jwt", "--state", net.state + "/newcomer-b"])
        XCTAssertEqual(genuine.status, 0, genuine.output)
        let key = try FileManager.default.attributesOfItem(atPath: net.state + "/newcomer-b/identity.key")[.posixPermissions] as? Int
        XCTAssertEqual(key, 0o600, "the private key is the owner's only")
    }

    // MARK: revocation

    func test_revokingAnIdentity_closesItsCircuitAtOnce_andItsCertificateIsRefusedFromThenOn() throws {
        let client = try TCPClient(intercept(of: "mallory"), timeoutSeconds: 20)
        client.send("GET /hold HTTP/1.1\r\nHost: demo\r\n\r\n")
        XCTAssertTrue(client.read(until: "holding").contains("holding"))
        let start = Date()
        let revoked = try Portless.cli(["identity", "revoke", "mallory"] + net.profile)
        XCTAssertTrue(revoked.contains("revokedCertificates"), revoked)
        let (_, ending) = client.readUntilClosed()
        let elapsed = Date().timeIntervalSince(start)
        print("live circuit of a revoked identity closed after \(String(format: "%.0f", elapsed * 1000)) ms")
        XCTAssertEqual(ending, .reset, "the application sees its stream cut, not a clean end")
        XCTAssertLessThan(elapsed, 3, "closed \(elapsed) s after the revocation (aim: within 1 s)")
        // The tunneler tries again with the same certificate, and the controller refuses it; so does
        // every router, to whoever presents it.
        XCTAssertTrue(eventually(10) { self.log("controller").contains("control connection with a revoked certificate refused") })
        for router in ["edge-1", "edge-2"] {
            try presentCertificate(of: net.state + "/tunnelers/mallory/identity", to: port("router/\(router)/edge"))
            XCTAssertTrue(eventually(5) { self.log(router).contains("edge connection with a revoked certificate refused") }, router)
        }
        let (text, _) = try request("/", via: "mallory")
        XCTAssertFalse(text.contains("HTTP/1.1 200"), "a revoked identity reaches nothing: \(text)")
    }

    func test_enrollingAgain_makesTheOldCertificateUseless() throws {
        XCTAssertTrue(try request("/", via: "traveler").text.contains("caller: traveler"))
        let old = net.state + "/tunnelers/traveler/identity"
        _ = try Portless.cli(["identity", "enrollment-token", "traveler", "--jwt", net.state + "/traveler-again.jwt"] + net.profile)
        let fresh = net.state + "/traveler-again"
        let enrolled = try Portless.run("portless-tunnel", ["enroll", "--token", "@" + net.state + "/traveler-again.jwt", "--state", fresh])
        XCTAssertEqual(enrolled.status, 0, enrolled.output)
        // The tunneler still holding the old certificate is cut off, and its reconnects refused.
        XCTAssertTrue(eventually(10) { self.log("edge-1").contains("identity=traveler") && (self.log("edge-1") + self.log("edge-2")).contains("revoked") })
        XCTAssertTrue(eventually(10) { (try? self.request("/", via: "traveler"))?.text.contains("HTTP/1.1 200") != true })
        // The new certificate works.
        let port = try Portless.freePort()
        let config: [String: Any] = ["identity": fresh, "intercepts": [["service": "hello", "listen": "127.0.0.1:\(port)"]]]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: net.state + "/traveler-again.json"))
        _ = try start("portless-tunnel", ["run", "--config", net.state + "/traveler-again.json"], log: "traveler-again")
        XCTAssertTrue(eventually(20) {
            guard let client = try? TCPClient("127.0.0.1:\(port)", timeoutSeconds: 5) else { return false }
            client.send("GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
            return String(decoding: client.readToEnd().data, as: UTF8.self).contains("caller: traveler")
        }, "the identity works again with its new certificate")
    }

    // MARK: ledgers and limits

    /// What a gateway reports it offers is taken only from the service's host, and a tool
    /// definition only with the hash it is pinned by: an operator approves what they can read.
    func test_catalogReports_fromANonHostOrWithAForgedDefinition_areRefused() async throws {
        let definition = #"{"description":"Harmless.","name":"read"}"#
        let tool = CatalogEntry(kind: .tool, name: "files__read", server: "files", item: "read",
                                hash: String(repeating: "0", count: 64), definition: definition)
        let outsider = try await ControlSession.connect(identityDirectory: net.state + "/tunnelers/laptop/identity")
        defer { outsider.close() }
        let refused = try await outsider.request { .reportCatalog(apiSession: $0, service: "hello", report: "r", entries: [tool], complete: true) }
        guard case .failure(let message) = refused else { return XCTFail("accepted from a non-host: \(refused)") }
        XCTAssertTrue(message.contains("may not host"), message)

        let host = try await ControlSession.connect(identityDirectory: net.state + "/tunnelers/enterprise/identity")
        defer { host.close() }
        let forged = try await host.request { .reportCatalog(apiSession: $0, service: "hello", report: "r", entries: [tool], complete: true) }
        guard case .failure(let reason) = forged else { return XCTFail("a definition its hash does not cover was accepted: \(forged)") }
        XCTAssertTrue(reason.contains("is not the one its hash"), reason)
        let pins = try Portless.cli(["mcp", "pins", "--service", "hello"] + net.profile)
        XCTAssertFalse(pins.contains("files__read"), "a refused report pinned something: \(pins)")
    }

    func test_forgedAndOutOfRangeUsage_isRefused_andUsageKeepsWorking() async throws {
        let outsider = try await ControlSession.connect(identityDirectory: net.state + "/tunnelers/laptop/identity")
        defer { outsider.close() }
        let valid = LLMUsageRecord(at: Date(), identity: "laptop", project: nil, model: "m", provider: "p", inputTokens: 10, outputTokens: 5, costUSD: 0.01)
        // An identity that hosts nothing may report nothing.
        let answer = try await outsider.request { .llmUsage(apiSession: $0, service: "hello", records: [valid]) }
        guard case .failure(let message) = answer else { return XCTFail("accepted from a non-host: \(answer)") }
        XCTAssertTrue(message.contains("may not host"), message)

        // The host of the service reports for its callers only, within bounds.
        let host = try await ControlSession.connect(identityDirectory: net.state + "/tunnelers/enterprise/identity")
        defer { host.close() }
        let forged = [
            LLMUsageRecord(at: Date(), identity: "laptop", project: nil, model: "m", provider: "p", inputTokens: Int.max, outputTokens: Int.max, costUSD: 1),
            LLMUsageRecord(at: Date(), identity: "laptop", project: nil, model: "m", provider: "p", inputTokens: -5, outputTokens: 0, costUSD: -100),
            LLMUsageRecord(at: Date(), identity: "laptop", project: nil, model: "m", provider: "p", inputTokens: 1, outputTokens: 1, costUSD: 1e300),
            LLMUsageRecord(at: Date(), identity: "someone-else", project: nil, model: "m", provider: "p", inputTokens: 1, outputTokens: 1, costUSD: 1),
            valid,
        ]
        let stored = try await host.request { .llmUsage(apiSession: $0, service: "hello", records: forged + forged) }
        guard case .ok = stored else { return XCTFail("\(stored)") }
        let usage = try Portless.cli(["usage", "--by", "identity", "--json"] + net.profile)
        let rows = (try JSONSerialization.jsonObject(with: Data(usage.utf8)) as? [[String: Any]]) ?? []
        XCTAssertEqual(rows.map { $0["key"] as? String }, ["laptop"], usage)
        XCTAssertEqual(rows.first?["inputTokens"] as? Int, 20, "only the valid records count: \(usage)")
        let refused = try Portless.cli(["audit", "--type", "usage.refused"] + net.profile)
        XCTAssertTrue(refused.contains("8 usage record(s) refused"), refused)
    }

    func test_anIdentityBeyondItsCircuitLimit_isRefusedWithAClearError() throws {
        var holds: [TCPClient] = []
        for _ in 0..<4 {
            let client = try TCPClient(intercept(of: "laptop"), timeoutSeconds: 20)
            client.send("GET /hold HTTP/1.1\r\nHost: demo\r\n\r\n")
            XCTAssertTrue(client.read(until: "holding").contains("holding"))
            holds.append(client)
        }
        let (text, _) = try request("/", via: "laptop")
        XCTAssertFalse(text.contains("HTTP/1.1 200"), "a fifth circuit is one too many: \(text)")
        XCTAssertTrue(eventually(5) { self.log("laptop").contains("has 4 circuits open, its limit") }, log("laptop").suffix(2000).description)
        holds.removeAll()
        XCTAssertTrue(eventually(10) { (try? self.request("/", via: "laptop"))?.text.contains("caller: laptop") == true }, "the limit frees up as circuits close")
    }

    // MARK: routers

    /// Runs last (alphabetical): it deletes edge-2.
    func test_z_aDeletedRouter_cannotLinkAnyMore() throws {
        XCTAssertTrue(eventually(10) { ((try? self.net.network())?["links"] as? [[String: Any]])?.isEmpty == false }, "edge-1 and edge-2 are linked")
        _ = try Portless.cli(["router", "delete", "edge-2"] + net.profile)
        XCTAssertTrue(eventually(10) { ((try? self.net.network())?["links"] as? [[String: Any]])?.isEmpty == true }, "the link is gone")
        // edge-2 still holds a certificate of this CA: edge-1 refuses a link from it.
        try presentCertificate(of: net.state + "/routers/edge-2", to: port("router/edge-1/link"))
        XCTAssertTrue(eventually(5) { self.log("edge-1").contains("link refused: not a current peer of this router") }, log("edge-1").suffix(2000).description)
        Thread.sleep(forTimeInterval: 2)
        XCTAssertEqual((try net.network()["links"] as? [[String: Any]])?.count, 0, "no link came back")
    }
}
