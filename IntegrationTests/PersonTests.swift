import Foundation
import XCTest
@testable import Shared

/// The person behind the agent (IntegrationTests/Support/people.yaml): people's tokens come from a
/// test identity provider; the hosting gateways verify them, check delegation, show what both the
/// agent and the person may use, sign a statement the upstream verifies against the controller's
/// JWKS, and the audit trail and usage name the person. Tokens that do not hold are refused
/// before anything reaches an upstream.
final class PersonTests: XCTestCase {
    nonisolated(unsafe) static var network: RunningTopology?
    nonisolated(unsafe) static var startError: String?
    static let topologyFile = Portless.repoRoot + "/IntegrationTests/Support/people.yaml"

    override class func setUp() {
        super.setUp()
        setenv("FAKE_OPENAI_KEY", "sk-test-openai", 1)
        do { network = try RunningTopology(path: topologyFile) } catch { startError = "\(error)" }
    }

    override class func tearDown() {
        network?.down()
        super.tearDown()
    }

    private var net: RunningTopology! { Self.network }  // safe: setUpWithError throws when it is nil

    override func setUpWithError() throws {
        if Self.network == nil { throw TestFailure("topology did not start: \(Self.startError ?? "unknown")") }
    }

    // MARK: helpers

    private func appAddress(_ app: String) throws -> String {
        guard let address = net.appAddress(app) else { throw TestFailure("no app \(app)") }
        return address
    }

    /// An HTTP exchange with an app or intercept: status and body.
    private func http(_ address: String, _ request: String) throws -> (status: Int, body: String) {
        let client = try TCPClient(address, timeoutSeconds: 30)
        client.send(request)
        let text = String(decoding: client.readToEnd().data, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        guard let split = text.range(of: "\r\n\r\n") else { return (status, "") }
        return (status, String(text[split.upperBound...]))
    }

    /// A person's token from the identity provider.
    private func mint(_ spec: [String: Any]) throws -> String {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let answer = try http(try appAddress("idp"), "POST /mint HTTP/1.1\r\nHost: idp\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        guard answer.status == 200 else { throw TestFailure("mint failed: \(answer)") }
        return answer.body
    }

    private func agent(_ arguments: [String]) throws -> [String: Any] {
        _ = Portless.environmentReady
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Portless.python)
        process.arguments = [Portless.repoRoot + "/IntegrationTests/Support/people/people_agent.py"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let errors = Locked(Data())
        let drain = Thread { errors.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() } }
        drain.start()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while drain.isExecuting { Thread.sleep(forTimeInterval: 0.01) }
        guard let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("people_agent.py \(arguments.prefix(2)) failed: \(String(decoding: errors.current, as: UTF8.self).suffix(2000))")
        }
        return json
    }

    private func mcpURL(_ service: String = "crm") throws -> String { "http://\(try net.interceptAddress(service, tunneler: "agent"))/mcp" }
    private var llmURL: String { get throws { "http://\(try net.interceptAddress("llm", tunneler: "agent"))/v1" } }

    private func tools(_ token: String, service: String = "crm", url: String? = nil) throws -> [String] {
        let answer = try agent(["tools", try url ?? mcpURL(service), token])
        guard let tools = answer["tools"] as? [String] else { throw TestFailure("no tools: \(answer)") }
        return tools
    }

    /// A stateless tools/call as raw HTTP through the agent's intercept: what the gateway answers before any client logic.
    private func rawCall(_ token: String?, tool: String = "crm__whoami", service: String = "crm") throws -> (status: Int, body: String) {
        let body = #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"\#(tool)","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#
        let authorization = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        return try http(try net.interceptAddress(service, tunneler: "agent"), "POST /mcp HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                        + "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: \(tool)\r\n\(authorization)"
                        + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
    }

    /// Tool calls that reached the CRM server, and requests that reached the fake providers.
    private func upstreamCounts() throws -> (crm: Int, providers: Int) {
        let stats = try http(try appAddress("crm-server"), "GET /_stats HTTP/1.1\r\nHost: crm\r\nConnection: close\r\n\r\n")
        let calls = ((try JSONSerialization.jsonObject(with: Data(stats.body.utf8)) as? [String: Any])?["calls"] as? Int) ?? -1
        let requests = try http(try appAddress("fakes"), "GET /_requests HTTP/1.1\r\nHost: fakes\r\nConnection: close\r\n\r\n")
        let received = ((try JSONSerialization.jsonObject(with: Data(requests.body.utf8))) as? [Any])?.count ?? -1
        return (calls, received)
    }

    private func alice() throws -> String { try mint(["sub": "alice", "groups": ["finance"]]) }

    // MARK: tests

    func test_a_anAgentActingForAPerson_seesWhatBothMayUse_andTheTrailAndUsageNameThePerson() throws {
        let alice = try alice()
        let bob = try mint(["sub": "bob", "groups": ["support"]])
        XCTAssertEqual(try tools("-"), ["crm__read_ticket", "crm__whoami", "crm__write_ticket"], "the agent alone: its own rules")
        XCTAssertEqual(try tools(alice), ["crm__read_ticket", "crm__whoami", "crm__write_ticket"],
                       "finance may drop tables, the agent may not: the intersection has no drop_table")
        XCTAssertEqual(try tools(bob), ["crm__read_ticket", "crm__whoami"], "support may not write tickets, whatever its agent may do")
        let denied = try agent(["call", try mcpURL(), bob, "crm__write_ticket", #"{"id": 1, "text": "x"}"#])
        XCTAssertNotNil(denied["error"], "bob's agent wrote a ticket: \(denied)")
        let allowed = try agent(["call", try mcpURL(), alice, "crm__write_ticket", #"{"id": 1, "text": "x"}"#])
        XCTAssertEqual((allowed["result"] as? [String: Any])?["text"] as? String, "ticket 1 updated", "\(allowed)")

        XCTAssertEqual(try agent(["models", try llmURL, alice])["models"] as? [String], ["gpt-big", "gpt-mini"])
        XCTAssertEqual(try agent(["models", try llmURL, bob])["models"] as? [String], ["gpt-mini"])
        let refused = try agent(["chat", try llmURL, bob, "gpt-big"])
        XCTAssertEqual((refused["error"] as? [String: Any])?["status"] as? Int, 404, "a model bob may not use must look absent: \(refused)")
        let chat = try agent(["chat", try llmURL, alice, "gpt-big"])
        XCTAssertEqual(chat["model"] as? String, "gpt-big", "\(chat)")

        // The trail: what agents did for alice, across both gateways, with the circuits that carried it.
        var events: [[String: Any]] = []
        for _ in 0..<50 {
            let json = try Portless.cli(["audit", "--user", "alice", "--limit", "1000"] + net.profile)
            events = (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]) ?? []
            let types = Set(events.map { $0["type"] as? String ?? "" })
            if types.contains("mcp.request") && types.contains("llm.request") { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let types = Set(events.map { $0["type"] as? String ?? "" })
        XCTAssertTrue(types.isSuperset(of: ["mcp.request", "llm.request", "circuit.opened"]), "audit --user alice: \(types)")
        for event in events where ["mcp.request", "llm.request"].contains(event["type"] as? String ?? "") {
            XCTAssertEqual(event["user"] as? String, "alice", "\(event)")
            XCTAssertEqual(event["identity"] as? String, "agent", "\(event)")
        }
        XCTAssertFalse(events.contains { ($0["user"] as? String) == "bob" }, "bob's calls are not alice's")
        XCTAssertTrue(events.contains { ($0["type"] as? String) == "llm.request" && (($0["detail"] as? String) ?? "").contains("costUSD") },
                      "the model call's cost is on the trail")

        var usage = ""
        for _ in 0..<50 {
            usage = try Portless.cli(["usage", "--by", "user", "--json"] + net.profile)
            if usage.contains("\"alice\"") { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTAssertTrue(usage.contains("\"key\" : \"alice\""), usage)
        XCTAssertTrue(try Portless.cli(["audit", "--verify"] + net.profile).contains("intact"), "rows naming a person keep the chain whole")
    }

    func test_b_theUpstream_verifiesTheGatewaysStatement_aboutPersonAndAgent() throws {
        let answer = try agent(["call", try mcpURL(), try alice(), "crm__whoami"])
        let text = (answer["result"] as? [String: Any])?["text"] as? String ?? ""
        let statement = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        XCTAssertEqual(statement["verified"] as? Bool, true, "the CRM server could not verify the gateway's statement: \(text)")
        XCTAssertEqual(statement["sub"] as? String, "alice")
        XCTAssertEqual((statement["act"] as? [String: Any])?["sub"] as? String, "agent")
        XCTAssertEqual(statement["aud"] as? String, "crm")
        XCTAssertNotNil(statement["portless_circuit"], "the statement names the circuit: \(statement)")

        let alone = try agent(["call", try mcpURL(), "-", "crm__whoami"])
        let own = (try? JSONSerialization.jsonObject(with: Data(((alone["result"] as? [String: Any])?["text"] as? String ?? "").utf8))) as? [String: Any] ?? [:]
        XCTAssertEqual(own["verified"] as? Bool, true, "\(own)")
        XCTAssertEqual(own["sub"] as? String, "agent", "an agent acting for nobody is the statement's subject")
        XCTAssertNil(own["act"])
    }

    func test_c_tokensThatDoNotHold_areRefusedWithAClearError_andNothingReachesAnUpstream() throws {
        let valid = try alice()
        let parts = valid.split(separator: ".").map(String.init)
        var claims = (try JSONSerialization.jsonObject(with: Base64URL.decode(parts[1]) ?? Data()) as? [String: Any]) ?? [:]
        claims["sub"] = "mallory"
        let tampered = parts[0] + "." + Base64URL.encode(try JSONSerialization.data(withJSONObject: claims)) + "." + parts[2]
        let cases: [(String, String, String)] = [
            ("expired", try mint(["sub": "alice", "groups": ["finance"], "exp_in": -300]), "expired at"),
            ("not yet valid", try mint(["sub": "alice", "groups": ["finance"], "nbf_in": 600]), "not valid before"),
            ("wrong audience", try mint(["sub": "alice", "groups": ["finance"], "aud": "someone-else"]), "audience 'someone-else'"),
            ("wrong issuer", try mint(["sub": "alice", "groups": ["finance"], "iss": "https://evil.test"]), "no external JWT signer trusts"),
            ("tampered", tampered, "altered or forged"),
            ("alg none", try mint(["sub": "alice", "groups": ["finance"], "alg": "none"]), "unsigned"),
        ]
        let before = try upstreamCounts()
        for (name, token, phrase) in cases {
            let mcp = try rawCall(token)
            XCTAssertEqual(mcp.status, 401, "\(name): MCP answered \(mcp)")
            XCTAssertTrue(mcp.body.contains(phrase), "\(name): the MCP error does not say '\(phrase)': \(mcp.body)")
            let llm = try agent(["chat", try llmURL, token, "gpt-mini"])
            let error = llm["error"] as? [String: Any] ?? [:]
            XCTAssertEqual(error["status"] as? Int, 401, "\(name): LLM answered \(llm)")
            XCTAssertTrue((error["message"] as? String ?? "").contains(phrase), "\(name): the LLM error does not say '\(phrase)': \(llm)")
        }
        let after = try upstreamCounts()
        XCTAssertEqual(after.crm, before.crm, "a refused call reached the CRM server")
        XCTAssertEqual(after.providers, before.providers, "a refused call reached a provider")
    }

    func test_d_anAgentNotAllowedToActForThatPerson_isRefused() throws {
        let before = try upstreamCounts()
        let rogue = try rawCall(try alice(), service: "crm")
        XCTAssertEqual(rogue.status, 200, "the agent may act for alice: \(rogue)")
        let carol = try mint(["sub": "carol", "groups": ["marketing"]])
        let refused = try rawCall(carol)
        XCTAssertEqual(refused.status, 403, "\(refused)")
        XCTAssertTrue(refused.body.contains("may not act for 'carol'"), refused.body)

        // The rogue agent may call the service for itself, but act for nobody.
        let rogueAddress = try net.interceptAddress("crm", tunneler: "rogue")
        let body = #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"crm__whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#
        func call(_ token: String?) throws -> (status: Int, body: String) {
            try http(rogueAddress, "POST /mcp HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nAccept: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\n"
                     + "Mcp-Method: tools/call\r\nMcp-Name: crm__whoami\r\n" + (token.map { "Authorization: Bearer \($0)\r\n" } ?? "")
                     + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        }
        let forAlice = try call(try alice())
        XCTAssertEqual(forAlice.status, 403, "\(forAlice)")
        XCTAssertTrue(forAlice.body.contains("agent 'rogue' may not act for 'alice'"), forAlice.body)
        let itself = try call(nil)
        XCTAssertEqual(itself.status, 200, "an agent acting for nobody keeps working: \(itself)")
        let after = try upstreamCounts()
        XCTAssertEqual(after.crm, before.crm + 2, "only the two allowed calls reached the CRM server")
    }

    func test_e_aServiceThatRequiresAPerson_refusesAnAgentAlone() throws {
        let alone = try rawCall(nil, service: "crm-strict")
        XCTAssertEqual(alone.status, 401, "\(alone)")
        XCTAssertTrue(alone.body.contains("acting for a person only"), alone.body)
        XCTAssertEqual(try tools(try alice(), service: "crm-strict"), ["crm__drop_table", "crm__read_ticket", "crm__whoami", "crm__write_ticket"])
    }

    func test_f_theStdioBridge_actsForThePersonInItsTokenFile() throws {
        let file = net.state + "/bob.jwt"
        try Files.write(try mint(["sub": "bob", "groups": ["support"]]), to: file, privateFile: true)
        let stdio = "stdio:\(net.state)/tunnelers/agent/identity:crm"
        XCTAssertEqual(try tools(file, url: stdio), ["crm__read_ticket", "crm__whoami"], "the bridge did not act for bob")
        try Files.write(try mint(["sub": "bob", "groups": ["support"], "exp_in": -300]), to: file, privateFile: true)
        let expired = try agent(["tools", stdio, file])
        XCTAssertTrue("\(expired)".contains("expired at"), "an expired token in the file must be refused, and say so: \(expired)")
    }
}
