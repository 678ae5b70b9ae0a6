import Foundation
import XCTest
@testable import Shared

/// The MCP gateway against upstreams that misbehave on purpose (IntegrationTests/Support/mcp-edges.yaml),
/// driven by the official MCP Python client (IntegrationTests/Support/mcp/edge_client.py) as two
/// agents, alice and bob. The enterprise tunneler runs with a provider key in its environment.
final class MCPEdgeTests: XCTestCase {
    nonisolated(unsafe) static var network: RunningTopology?
    nonisolated(unsafe) static var startError: String?
    /// alice's tool list, taken the moment `topology up` returned.
    nonisolated(unsafe) static var firstList: [String: Any] = [:]
    /// Servers a test restarted by hand; they outlive the test (others use them) and go with the class.
    nonisolated(unsafe) static var restarted: [Process] = []
    static let secret = "sk-test-\(UUID().uuidString)"

    override class func setUp() {
        super.setUp()
        do {
            // No PORTLESS_PYTHON: `{python}` must find the project's virtualenv by itself.
            network = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/mcp-edges.yaml",
                                          environment: ["OPENAI_API_KEY": secret, "PORTLESS_PYTHON": ""])
            firstList = (try? parse(runClient(["inventory", url("alice")], script: "topology/mcp/mcp_agent.py"), "inventory").last) ?? [:]
        } catch {
            startError = "\(error)"
        }
    }

    override class func tearDown() {
        for process in restarted where process.isRunning {
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

    static let allTools = ["edge__ask", "edge__echo_number", "edge__environment", "edge__freeze", "edge__log_twice", "edge__pid",
                           "edge__trace_context", "guard__confirm", "guard__echo", "sessions__echo", "sessions__stall"]

    static func url(_ agent: String) -> String {
        let address = ((network?.status["intercepts"] as? [[String: Any]])?.first { $0["tunneler"] as? String == agent }?["address"] as? String) ?? ""
        return "http://\(address)/mcp"
    }

    /// Runs a client script with the project's Python; returns stdout and stderr.
    static func runClient(_ arguments: [String], script: String = "IntegrationTests/Support/mcp/edge_client.py",
                          timeout: TimeInterval = 60) throws -> (String, String) {
        _ = Portless.environmentReady
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Portless.python)
        process.arguments = [Portless.repoRoot + "/" + script] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let killer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let errors = Locked(Data())
        let drain = Thread { errors.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() } }
        drain.start()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        killer.cancel()
        while drain.isExecuting { Thread.sleep(forTimeInterval: 0.01) }
        return (String(decoding: data, as: UTF8.self), String(decoding: errors.current, as: UTF8.self))
    }

    static func parse(_ output: (String, String), _ what: String) throws -> [[String: Any]] {
        let lines = output.0.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        if lines.isEmpty { throw TestFailure("\(what) printed nothing: \(output.1.suffix(2000))") }
        return lines
    }

    @discardableResult
    static func client(_ arguments: [String], timeout: TimeInterval = 60) throws -> [String: Any] {
        try Self.parse(Self.runClient(arguments, timeout: timeout), arguments.joined(separator: " ")).last ?? [:]
    }

    static func call(_ agent: String, _ tool: String, _ arguments: String, mode: String = "legacy") throws -> [String: Any] {
        try client(["call", Self.url(agent), tool, arguments, "--mode", mode])
    }

    // MARK: ready means ready

    func test_aClientListingTheInstantTopologyUpReturns_seesEveryToolItsPolicyAllows() {
        XCTAssertEqual(Self.firstList["tools"] as? [String], Self.allTools, "\(Self.firstList)")
    }

    // MARK: upstream deadlines and health

    func test_sseUpstreamThatStallsAfterItsHeaders_timesOutAtItsDeadline_whileTheOthersKeepAnswering() throws {
        let started = Date()
        let stalled = Locked<[String: Any]>([:])
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            stalled.withLock { $0 = (try? Self.call("alice", "sessions__stall", "{}")) ?? [:] }
            done.signal()
        }
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try Self.call("bob", "edge__echo_number", #"{"n": 7}"#)["result"] as? String, "7", "the stdio upstream must answer meanwhile")
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        let error = stalled.current["error"] as? [String: Any]
        XCTAssertEqual(error?["code"] as? Int, -32001, "\(stalled.current)")
        XCTAssertEqual(error?["message"] as? String, "upstream 'sessions' did not answer tools/call within 2000 ms")
        XCTAssertLessThan(Date().timeIntervalSince(started), 20, "the deadline covers the whole exchange, not only the headers")
        XCTAssertTrue((try Self.call("alice", "sessions__echo", #"{"text": "after"}"#)["result"] as? String)?.hasPrefix("after") == true)
    }

    func test_httpUpstreamRestartedMidSession_callsWorkAgain() throws {
        let before = try Self.call("alice", "sessions__echo", #"{"text": "one"}"#)["result"] as? String ?? ""
        guard let old = net.pid(of: "sessions-mcp"), let address = net.appAddress("sessions-mcp") else {
            throw TestFailure("no session server")
        }
        kill(old, SIGKILL)
        let port = String(address.split(separator: ":").last ?? "")
        let restarted = Process()
        restarted.executableURL = URL(fileURLWithPath: Portless.python)
        restarted.arguments = [Portless.repoRoot + "/IntegrationTests/Support/mcp/session_http_server.py", port]
        try restarted.run()
        Self.restarted.append(restarted)
        try waitUntil("the restarted server accepts", within: 10) { (try? TCPClient(address, timeoutSeconds: 1)) != nil }
        let after = try Self.call("alice", "sessions__echo", #"{"text": "two"}"#)
        let text = after["result"] as? String ?? ""
        XCTAssertTrue(text.hasPrefix("two"), "\(after)")
        XCTAssertNotEqual(text.split(separator: " ").last, before.split(separator: " ").last, "answered by the new server process")
    }

    func test_childThatStopsReadingItsStdin_isRestarted_whileTheOthersKeepAnswering() throws {
        guard let frozen = try serverPID("edge_stdio_server.py") else { throw TestFailure("no stdio server") }
        let outcomes = Locked<[[String: Any]]>([])
        let group = DispatchGroup()
        let big = NSTemporaryDirectory() + "big-\(UUID().uuidString).json"
        try ("{\"text\": \"" + String(repeating: "x", count: 300_000) + "\"}").write(toFile: big, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: big) }
        for (tool, arguments) in [("edge__freeze", "{}"), ("edge__log_twice", "@" + big)] {
            group.enter()
            DispatchQueue.global().async {
                let outcome = (try? Self.call("alice", tool, arguments)) ?? [:]
                outcomes.withLock { $0.append(outcome) }
                group.leave()
            }
            Thread.sleep(forTimeInterval: 1)  // frozen first; then more than its pipe holds is written to it
        }
        XCTAssertTrue((try Self.call("bob", "sessions__echo", #"{"text": "alive"}"#)["result"] as? String)?.hasPrefix("alive") == true,
                      "an upstream that stops reading holds up nobody else")
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        for outcome in outcomes.current { XCTAssertEqual((outcome["error"] as? [String: Any])?["code"] as? Int, -32001, "\(outcome)") }
        try waitUntil("a new stdio server", within: 20) { ((try? self.serverPID("edge_stdio_server.py")) ?? nil).map { $0 != frozen } == true }
        XCTAssertNotEqual(kill(frozen, 0), 0, "the frozen process was stopped")
        try waitUntil("the restarted server answers", within: 20) { (try? Self.call("bob", "edge__echo_number", #"{"n": 1}"#))?["result"] as? String == "1" }
    }

    // MARK: what an upstream says reaches only its caller

    func test_aToolsLogMessages_reachOnlyTheCallerWhoseCallLogged() throws {
        for mode in ["legacy", "2026-07-28"] {
            let idle = Locked<[[String: Any]]>([])
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                idle.withLock { $0 = (try? Self.parse(Self.runClient(["idle", Self.url("bob"), "4", "--mode", mode]), "idle")) ?? [] }
                done.signal()
            }
            Thread.sleep(forTimeInterval: 2)
            let called = try Self.call("alice", "edge__log_twice", #"{"text": "alice-only"}"#, mode: mode)
            XCTAssertEqual(called["result"] as? String, "logged alice-only")
            let logs = called["logs"] as? [String] ?? []
            XCTAssertEqual(logs.count, 2, "\(mode): the caller gets its call's log messages: \(called)")
            XCTAssertTrue(logs.allSatisfy { $0.contains("alice-only") })
            XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
            XCTAssertEqual(idle.current.first?["ready"] as? Bool, true, "\(mode): \(idle.current)")
            XCTAssertEqual(idle.current.last?["logs"] as? [String], [], "\(mode): another caller sees none of them")
        }
    }

    // MARK: exact numbers

    func test_integerAbove2To53_roundTripsExactly() throws {
        XCTAssertEqual(try Self.call("alice", "edge__echo_number", #"{"n": 9223372036854775807}"#)["result"] as? String, "9223372036854775807")
        // A JSON-RPC id beyond 2^53 comes back as sent (2026-07-28 request, raw).
        let response = try rawPost(Self.url("alice"), body: #"{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
                                   headers: ["MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"])
        XCTAssertTrue(response.contains(#""id":9007199254740993"#), response.prefix(300).description)
    }

    // MARK: requests of the upstream for the caller

    func test_upstreamAsksForSamplingAndElicitation_theCallersCallbacksAnswerThroughTheGateway() throws {
        for mode in ["legacy", "2026-07-28"] {
            let answer = try Self.client(["ask", Self.url("alice"), "capital of France?", "--mode", mode])
            XCTAssertEqual(answer["result"] as? String, "model said echo(capital of France?); user accept True", "\(mode): \(answer)")
            XCTAssertEqual(answer["asked"] as? [String], ["sampling", "elicitation"], mode)
        }
    }

    func test_statelessUpstreamAsksForInput_aSessionCallerIsAskedByTheGateway() throws {
        for mode in ["legacy", "2026-07-28"] {
            let answer = try Self.call("alice", "guard__confirm", #"{"action": "deploy"}"#, mode: mode)
            XCTAssertEqual(answer["result"] as? String, "deploy: accept {'value': True}", "\(mode): \(answer)")
            XCTAssertEqual(answer["asked"] as? [String], ["elicitation"], mode)
        }
    }

    func test_aCallerThatDeclaredNoSampling_isNeverSentSamplingRequests() throws {
        // A raw 2025-11-25 session that declares no capabilities: the upstream's request is refused for it.
        let url = Self.url("bob")
        let initialize = try rawPost(url, body: #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#)
        guard let session = initialize.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("mcp-session-id:") })?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) else { throw TestFailure("no session: \(initialize)") }
        let answer = try rawPost(url, body: #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"edge__ask","arguments":{"question":"q"}}}"#,
                                 headers: ["Mcp-Session-Id": session])
        XCTAssertFalse(answer.contains(#""method":"sampling/createMessage""#), "no request the client cannot answer: \(answer)")
        XCTAssertTrue(answer.contains("the calling client does not support sampling"), answer)
        XCTAssertTrue(answer.contains(#""isError":true"#), answer)
    }

    // MARK: secrets

    func test_stdioUpstream_getsOnlyAMinimalEnvironmentAndItsConfiguredVariables() throws {
        let listed = try Self.call("alice", "edge__environment", "{}")["result"] as? String ?? ""
        let names = (try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [String]) ?? []
        XCTAssertTrue(names.contains("EDGE_MARK"), "its configured env: \(names)")
        XCTAssertFalse(names.contains("OPENAI_API_KEY"), "the tunneler's provider key never reaches an MCP server: \(names)")
        XCTAssertTrue(Set(names).isSubset(of: ["EDGE_MARK", "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME"]), "\(names)")
        guard let pid = try serverPID("edge_stdio_server.py") else { throw TestFailure("no stdio server") }
        let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
        XCTAssertFalse(String(decoding: environ, as: UTF8.self).contains(Self.secret))
        XCTAssertEqual(getpgid(pid), pid, "it runs in its own process group")
        let commandLine = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data(), as: UTF8.self)
        XCTAssertTrue(commandLine.hasPrefix(Portless.repoRoot + "/.build/venv/bin/python"), "{python} is the project's virtualenv: \(commandLine)")
    }

    func test_aProcessOtherThanTheTunneler_cannotTalkToTheGatewaySocket() throws {
        // The gateway's private socket, reached directly — as an MCP server the gateway started could
        // (same user): a PROXY header naming alice, then a request.
        let path = net.state + "/tunnelers/corp/identity/gateways/mcp-edges.sock"
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        XCTAssertEqual(connected, 0, "the socket accepts the connection, then judges who made it")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let body = #"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#
        let request = ProxyProtocol.encode(caller: "alice-agent", circuitID: 1)
            + Array("POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        XCTAssertLessThanOrEqual(n, 0, "the gateway answered a process that is not the tunneler: \(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self))")
    }

    // MARK: helpers

    private func serverPID(_ script: String) throws -> Int32? {
        guard let tunneler = net.pid(of: "corp") else { throw TestFailure("no corp tunneler") }
        let output = try Portless.shell("pgrep -P \(tunneler) -f \(script) || true")
        return output.split(separator: "\n").first.flatMap { Int32($0) }
    }

    private func waitUntil(_ what: String, within seconds: TimeInterval, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw TestFailure("timed out waiting for \(what)")
    }

    /// One raw HTTP POST; returns the whole response, head and body.
    private func rawPost(_ url: String, body: String, headers: [String: String] = [:]) throws -> String {
        let address = url.replacingOccurrences(of: "http://", with: "").replacingOccurrences(of: "/mcp", with: "")
        let client = try TCPClient(address, timeoutSeconds: 30)
        var request = "POST /mcp HTTP/1.1\r\nHost: \(address)\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        client.send(request + "\r\n" + body)
        return String(decoding: client.readToEnd().data, as: UTF8.self)
    }
}
