import Foundation
import XCTest
@testable import Shared

/// The LLM gateway driven by the official OpenAI Python client through the agent's intercept,
/// in front of fake providers that speak each provider's wire format
/// (IntegrationTests/Support/fake_providers.py, llm-providers.yaml).
final class LLMGatewayTests: XCTestCase {
    nonisolated(unsafe) static var network: RunningTopology?
    nonisolated(unsafe) static var startError: String?
    /// Processes a test restarted by hand (the topology no longer tracks them).
    nonisolated(unsafe) static var restarted: [Int32] = []
    static let topologyFile = Portless.repoRoot + "/IntegrationTests/Support/llm-providers.yaml"

    override class func setUp() {
        super.setUp()
        // Provider credentials reach the enterprise tunneler only, through its environment.
        for (name, value) in ["FAKE_OPENAI_KEY": "sk-test-openai", "FAKE_AZURE_KEY": "azure-test-key", "FAKE_ANTHROPIC_KEY": "sk-ant-test",
                              "FAKE_AWS_ACCESS": "AKIDEXAMPLE", "FAKE_AWS_SECRET": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"] {
            setenv(name, value, 1)
        }
        do { network = try RunningTopology(path: topologyFile) } catch { startError = "\(error)" }
    }

    override class func tearDown() {
        for pid in restarted {
            kill(pid, SIGTERM)
            for _ in 0..<100 where kill(pid, 0) == 0 { Thread.sleep(forTimeInterval: 0.1) }
            kill(pid, SIGKILL)
        }
        network?.down()
        super.tearDown()
    }

    private var net: RunningTopology! { Self.network }  // safe: setUpWithError throws when it is nil

    override func setUpWithError() throws {
        if Self.network == nil { throw TestFailure("topology did not start: \(Self.startError ?? "unknown")") }
    }

    private var url: String { "http://\(net.interceptAddress("llm", of: "agent"))/v1" }

    @discardableResult
    private func client(_ arguments: [String]) throws -> [String: Any] {
        _ = Portless.environmentReady
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Portless.python)
        process.arguments = [Portless.repoRoot + "/topology/llm/openai_agent.py"] + arguments
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
            throw TestFailure("openai_agent.py \(arguments) failed: \(String(decoding: errors.current, as: UTF8.self).suffix(2000))")
        }
        return json
    }

    /// What the fake providers received, newest last.
    private func received() throws -> [[String: Any]] {
        let fakes = try TCPClient(appAddress("fakes"))
        fakes.send("GET /_requests HTTP/1.1\r\nHost: fakes\r\nConnection: close\r\n\r\n")
        let text = String(decoding: fakes.readToEnd().data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return [] }
        return (try JSONSerialization.jsonObject(with: Data(text[split.upperBound...].utf8)) as? [[String: Any]]) ?? []
    }

    private func appAddress(_ app: String) throws -> String {
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: net.state + "/topology.json"))) as? [String: Any]
        guard let address = (state?["ports"] as? [String: String])?["app/\(app)"] else { throw TestFailure("no app \(app)") }
        return address
    }

    func test_openAIClient_models_chat_stream_tools_embeddings() throws {
        let models = try client(["models", url])["models"] as? [String] ?? []
        for expected in ["auto", "gpt-mini", "claude", "nova", "gemini", "llama", "text-embed", "fallback-chain"] {
            XCTAssertTrue(models.contains(expected), "\(expected) missing from \(models)")
        }
        let chat = try client(["chat", url, "gpt-mini", "hello there"])
        XCTAssertEqual(chat["content"] as? String, "openai says: hello there", "\(chat)")
        XCTAssertEqual(chat["model"] as? String, "gpt-mini")
        let stream = try client(["stream", url, "gpt-mini", "hello there"])
        XCTAssertEqual(stream["content"] as? String, "openai says: hello there")
        XCTAssertNotNil((stream["usage"] as? [String: Any])?["total_tokens"], "include_usage must deliver usage: \(stream)")
        let tools = try client(["tools", url, "gpt-mini"])
        XCTAssertEqual(tools["finish"] as? String, "tool_calls")
        XCTAssertEqual(tools["tool"] as? String, "search_tickets")
        XCTAssertEqual((tools["answer"] as? String)?.contains("VPN down in Lyon"), true, "\(tools)")
        let embed = try client(["embed", url, "text-embed", "first", "second"])
        XCTAssertEqual(embed["count"] as? Int, 2)
        XCTAssertEqual(embed["dimensions"] as? Int, 3)
    }

    func test_eachAdapter_translatesRequestsResponsesStreamsAndToolCalls() throws {
        let expectations = ["azure-4o": "azure", "claude": "anthropic", "nova": "bedrock", "gemini": "vertex", "llama": "ollama"]
        for (model, provider) in expectations {
            let chat = try client(["chat", url, model, "hello there"])
            XCTAssertEqual((chat["content"] as? String)?.trimmingCharacters(in: .whitespaces), "\(provider) says: hello there", "\(model): \(chat)")
            XCTAssertGreaterThan(((chat["usage"] as? [String: Any])?["completion_tokens"] as? Int) ?? 0, 0, "\(model) usage: \(chat)")
            let stream = try client(["stream", url, model, "hello there"])
            XCTAssertEqual((stream["content"] as? String)?.trimmingCharacters(in: .whitespaces), "\(provider) says: hello there", "\(model) stream: \(stream)")
            XCTAssertGreaterThan(((stream["usage"] as? [String: Any])?["total_tokens"] as? Int) ?? 0, 0, "\(model) stream usage: \(stream)")
            let tools = try client(["tools", url, model])
            XCTAssertEqual(tools["finish"] as? String, "tool_calls", "\(model): \(tools)")
            XCTAssertEqual(tools["arguments"] as? [String: String], ["query": "vpn"], "\(model): \(tools)")
            XCTAssertEqual((tools["answer"] as? String)?.contains("VPN down in Lyon"), true, "\(model): \(tools)")
        }
        let seen = try received()
        // Each provider got its own wire format, with its own credentials.
        let azure = seen.last { $0["provider"] as? String == "azure" }
        XCTAssertEqual(azure?["path"] as? String, "/azure/openai/deployments/prod-4o/chat/completions")
        XCTAssertEqual(azure?["query"] as? String, "api-version=2024-10-21")
        let anthropic = seen.last { $0["provider"] as? String == "anthropic" }
        let anthropicBody = anthropic?["body"] as? [String: Any]
        XCTAssertEqual(anthropicBody?["model"] as? String, "claude-sonnet-4-5")
        XCTAssertNotNil(anthropicBody?["max_tokens"])
        let toolResult = ((anthropicBody?["messages"] as? [[String: Any]])?.last?["content"] as? [[String: Any]])?.first
        XCTAssertEqual(toolResult?["type"] as? String, "tool_result")
        XCTAssertEqual((anthropic?["headers"] as? [String: String])?["anthropic-version"], "2023-06-01")
        let bedrock = seen.last { $0["provider"] as? String == "bedrock" }
        XCTAssertTrue((bedrock?["path"] as? String)?.hasPrefix("/bedrock/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse") == true, "\(String(describing: bedrock?["path"]))")
        XCTAssertTrue(((bedrock?["headers"] as? [String: String])?["authorization"])?.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") == true)
        XCTAssertTrue(seen.contains { $0["provider"] as? String == "vertex-token" }, "the Vertex adapter minted a token from the service-account key")
        let ollama = seen.last { $0["provider"] as? String == "ollama" }
        XCTAssertEqual((ollama?["body"] as? [String: Any])?["model"] as? String, "llama3.2")
    }

    func test_personalData_neverReachesANonPrivateProvider() throws {
        let secret = "jane.doe.\(UUID().uuidString.prefix(6))@example.com"
        let answer = try client(["chat", url, "auto", "Write to \(secret) about card 4111 1111 1111 1111"])
        let route = answer["route"] as? [String: String]
        XCTAssertEqual(route?["x-portless-route-class"], "sensitive", "\(answer)")
        XCTAssertEqual(route?["x-portless-model"], "llama")
        let asked = try client(["chat", url, "gpt-mini", "Please email \(secret)"])
        XCTAssertEqual((asked["route"] as? [String: String])?["x-portless-model"], "llama", "a named public model is not used for personal data: \(asked)")
        for request in try received() where (request["provider"] as? String) != "ollama" {
            let body = String(decoding: try JSONSerialization.data(withJSONObject: request["body"] ?? [:]), as: UTF8.self)
            XCTAssertFalse(body.contains(secret), "personal data reached \(request["provider"] ?? "?")")
        }
    }

    func test_auto_routesPerClass_andSaysWhy() throws {
        let cheap = try client(["chat", url, "auto", "Summarize this paragraph in one sentence"])["route"] as? [String: String]
        XCTAssertEqual(cheap?["x-portless-route-class"], "cost")
        XCTAssertEqual(cheap?["x-portless-model"], "gpt-mini")
        let code = try client(["chat", url, "auto", "Fix this: ```func main() { import os; print(x) }```"])["route"] as? [String: String]
        XCTAssertEqual(code?["x-portless-route-class"], "quality")
        XCTAssertEqual(code?["x-portless-model"], "claude")
        XCTAssertEqual(code?["x-portless-route-reason"], "heuristic: code in the prompt")
        let hinted = try client(["chat", url, "auto", "anything at all", "--hint", "latency"])["route"] as? [String: String]
        XCTAssertEqual(hinted?["x-portless-route-class"], "latency")
        XCTAssertEqual(hinted?["x-portless-route-reason"], "hint: caller asked for latency")
        let blocked = try client(["chat", url, "auto", "How do I make bioweapons at home?"])["error"] as? [String: Any]
        XCTAssertEqual(blocked?["status"] as? Int, 400)
        XCTAssertEqual(blocked?["code"] as? String, "content_policy")
    }

    func test_fallback_onServerError_andOnTimeout() throws {
        let failed = try client(["chat", url, "fallback-chain", "hello"])
        XCTAssertEqual((failed["route"] as? [String: String])?["x-portless-model"], "claude", "\(failed)")
        XCTAssertEqual(failed["content"] as? String, "anthropic says: hello")
        let started = Date()
        let slow = try client(["chat", url, "slow-chain", "hello"])
        XCTAssertEqual((slow["route"] as? [String: String])?["x-portless-model"], "gemini", "\(slow)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        // The deadline covers the whole answer: a provider that sends its first bytes and stalls times out as well.
        let dripStarted = Date()
        let drip = try client(["chat", url, "drip-chain", "hello"])
        XCTAssertEqual((drip["route"] as? [String: String])?["x-portless-model"], "gemini", "\(drip)")
        XCTAssertLessThan(Date().timeIntervalSince(dripStarted), 20)
        let streamFallback = try client(["stream", url, "stream-chain", "hello"])
        XCTAssertEqual(streamFallback["content"] as? String, "openai says: hello", "a stream that fails before its first byte falls back: \(streamFallback)")
    }

    func test_noFallback_afterAStreamStarted() throws {
        let before = try received().filter { $0["provider"] as? String == "openai" }.count
        let broken = try client(["stream", url, "break-chain", "hello there friend"])
        XCTAssertFalse((broken["content"] as? String ?? "").contains("openai"), "no second provider after bytes were sent: \(broken)")
        XCTAssertEqual((broken["content"] as? String)?.hasPrefix("anthropic"), true, "the first provider's bytes arrived: \(broken)")
        XCTAssertTrue((broken["broken"] as? String)?.contains("stream") == true, "the caller is told the stream broke: \(broken)")
        let after = try received().filter { $0["provider"] as? String == "openai" }.count
        XCTAssertEqual(after, before, "the fallback model was called after the stream had started")
    }

    func test_budget_blocksWith429_andSurvivesGatewayAndControllerRestarts() throws {
        let first = try client(["chat", url, "claude", "spend a little", "--project", "tight"])
        XCTAssertNotNil(first["content"], "\(first)")
        var blocked: [String: Any]?
        for _ in 0..<20 {
            let answer = try client(["chat", url, "claude", "spend more", "--project", "tight"])
            if let error = answer["error"] as? [String: Any] { blocked = error; break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTAssertEqual(blocked?["status"] as? Int, 429)
        XCTAssertTrue((blocked?["message"] as? String)?.contains("daily budget of $0.00 for project 'tight' is spent") == true, "\(String(describing: blocked))")
        XCTAssertEqual(blocked?["code"] as? String, "budget_exceeded")
        Thread.sleep(forTimeInterval: 1)  // reported to the controller

        for name in ["enterprise", "controller"] {
            guard let pid = net.pid(of: name) else { continue }
            kill(pid, SIGTERM)
            for _ in 0..<100 where kill(pid, 0) == 0 { Thread.sleep(forTimeInterval: 0.1) }
        }
        try restart("portless-controller", ["run", "--state", net.state + "/controller"], log: "controller")
        try restart("portless-tunnel", ["run", "--config", net.state + "/tunnelers/enterprise/tunnel.json"], log: "enterprise")
        var again: [String: Any] = [:]
        for _ in 0..<60 {
            again = (try? client(["chat", url, "claude", "after the restart", "--project", "tight"])) ?? [:]
            if let status = (again["error"] as? [String: Any])?["status"] as? Int, status == 429 || status == 400 || status == 404 { break }
            if again["content"] != nil { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        XCTAssertEqual((again["error"] as? [String: Any])?["status"] as? Int, 429, "the spend was forgotten by a restart: \(again)")
        let other = try client(["chat", url, "claude", "another project", "--project", "roomy"])
        XCTAssertNotNil(other["content"], "other projects are not blocked: \(other)")

        let usage = try Portless.cli(["usage", "--by", "project", "--json"] + net.profile)
        let rows = (try JSONSerialization.jsonObject(with: Data(usage.utf8)) as? [[String: Any]]) ?? []
        XCTAssertGreaterThan((rows.first { $0["key"] as? String == "tight" }?["costUSD"] as? Double) ?? 0, 0, usage)
        let byModel = try Portless.cli(["usage", "--by", "model"] + net.profile)
        XCTAssertTrue(byModel.contains("claude"), byModel)
    }

    /// Starts a process detached from the test (as `topology up` does), logging where it did.
    /// `system` waits for the shell only; Foundation's Process is not used for a detached child.
    private func restart(_ program: String, _ arguments: [String], log name: String) throws {
        let command = ([Portless.binDir + "/" + program] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let pidFile = net.state + "/restarted-\(name).pid"
        let status = system("cd /; nohup \(command) >> '\(net.state)/logs/\(name).log' 2>&1 < /dev/null & echo $! > '\(pidFile)'")
        guard status == 0, let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw TestFailure("could not restart \(program)") }
        Self.restarted.append(pid)
    }

    func test_auditTrail_recordsRouteTokensCostAndVerdicts() throws {
        _ = try client(["chat", url, "auto", "Mail bob@example.com the summary"])
        var events: [[String: Any]] = []
        for _ in 0..<20 {
            let listing = try Portless.cli(["audit", "--identity", "agent", "--type", "llm.request", "--limit", "1000"] + net.profile)
            XCTAssertFalse(listing.contains("bob@example.com"), "prompts never reach the audit trail")
            events = (try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[String: Any]]) ?? []
            if events.contains(where: { ($0["detail"] as? String)?.contains("pii email") == true }) { break }
            Thread.sleep(forTimeInterval: 0.25)
        }
        let event = events.last { ($0["detail"] as? String)?.contains("pii email") == true }
        XCTAssertNotNil(event?["circuit"] as? Int, "\(String(describing: event))")
        let detail = (event?["detail"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(detail?["model"] as? String, "llama")
        XCTAssertEqual(detail?["routeClass"] as? String, "sensitive")
        XCTAssertNotNil(detail?["costUSD"] as? Double)
        XCTAssertGreaterThan(detail?["inputTokens"] as? Int ?? 0, 0)
        XCTAssertEqual((detail?["guardrails"] as? [String])?.first, "pii email: private")
    }

    func test_badRequests_getOpenAIShapedErrors() throws {
        let unknown = try client(["chat", url, "no-such-model", "x"])["error"] as? [String: Any]
        XCTAssertEqual(unknown?["status"] as? Int, 404)
        XCTAssertEqual(unknown?["code"] as? String, "model_not_found")
        let raw = try TCPClient(net.interceptAddress("llm", of: "agent"))
        let body = "{not json"
        raw.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let text = String(decoding: raw.readToEnd().data, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 400"), text)
        XCTAssertTrue(text.contains(#""type":"invalid_request_error""#), text)
    }

    // MARK: hostile callers and broken providers

    func test_fiveBadRequests_doNotOpenTheProvidersBreakerForEveryone() throws {
        for _ in 0..<6 {
            let refused = try client(["chat", url, "gpt-mini", "hello", "--max-tokens", "-1"])["error"] as? [String: Any]
            XCTAssertEqual(refused?["status"] as? Int, 400, "the caller's own mistake comes back as its 400: \(String(describing: refused))")
            XCTAssertTrue((refused?["message"] as? String)?.contains("max_tokens") == true, "\(String(describing: refused))")
        }
        let fine = try client(["chat", url, "gpt-mini", "still served"])
        XCTAssertEqual(fine["content"] as? String, "openai says: still served", "one caller's 400s must not take the provider away: \(fine)")
    }

    func test_personalDataInAnEmbeddingsRequest_staysOnAPrivateModel() throws {
        let marker = "jane.\(UUID().uuidString.prefix(6))@example.com"
        let embedded = try client(["embed", url, "text-embed", "contact \(marker) tomorrow"])
        XCTAssertEqual(embedded["count"] as? Int, 1, "\(embedded)")
        XCTAssertEqual((embedded["route"] as? [String: Any])?["x-portless-model"] as? String, "local-embed", "\(embedded)")
        let seen = try received()
        XCTAssertFalse(seen.contains { $0["provider"] as? String == "openai" && "\($0["body"] ?? "")".contains(marker) },
                       "personal data reached a public embeddings provider")
        XCTAssertTrue(seen.contains { $0["provider"] as? String == "ollama" && "\($0["body"] ?? "")".contains(marker) })
    }

    func test_personalDataInToolArguments_keepsTheRequestPrivate() throws {
        let body: [String: Any] = [
            "model": "gpt-mini",
            "messages": [
                ["role": "user", "content": "Look the customer up"],
                ["role": "assistant", "content": NSNull(), "tool_calls": [["id": "call_1", "type": "function",
                    "function": ["name": "lookup", "arguments": #"{"card": "4111 1111 1111 1111"}"#]]]],
                ["role": "tool", "tool_call_id": "call_1", "content": "found"],
            ],
        ]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let answer = try client(["raw", url, text])
        XCTAssertEqual((answer["route"] as? [String: String])?["x-portless-model"], "llama", "a card number in tool arguments is personal data: \(answer)")
    }

    func test_aProjectTheCallerMayNotBill_isRefused() throws {
        for project in ["finance", "someone-elses-\(UUID().uuidString.prefix(4))"] {
            let refused = try client(["chat", url, "gpt-mini", "bill it elsewhere", "--project", project])["error"] as? [String: Any]
            XCTAssertEqual(refused?["status"] as? Int, 403, "\(project): \(String(describing: refused))")
            XCTAssertEqual(refused?["code"] as? String, "project_not_allowed")
        }
        XCTAssertNotNil(try client(["chat", url, "gpt-mini", "no project at all"])["content"])
    }

    func test_providerErrors_sayWhatIsWrong_withoutLeakingInternals() throws {
        let denied = try client(["chat", url, "gpt-denied", "hello"])["error"] as? [String: Any]
        XCTAssertEqual(denied?["status"] as? Int, 502, "the provider refused the gateway's key, not the caller's: \(String(describing: denied))")
        XCTAssertEqual(denied?["code"] as? String, "provider_credentials", "\(String(describing: denied))")
        let nowhere = try client(["chat", url, "gpt-nowhere", "hello"])["error"] as? [String: Any]
        XCTAssertEqual(nowhere?["status"] as? Int, 502, "\(String(describing: nowhere))")
        XCTAssertFalse((nowhere?["message"] as? String ?? "127.0.0.1").contains("127.0.0.1"), "no internal address: \(String(describing: nowhere))")
        let redirected = try client(["chat", url, "gpt-redirect", "hello"])["error"] as? [String: Any]
        XCTAssertEqual(redirected?["status"] as? Int, 502, "\(String(describing: redirected))")
        XCTAssertFalse(try received().contains { $0["provider"] as? String == "stolen" }, "a redirect was followed, carrying the provider key")
    }

    func test_aCallerThatGoesAway_cancelsItsProviderCall() throws {
        let client = try TCPClient(net.interceptAddress("llm", of: "agent"))
        let body = #"{"model": "gpt-slow", "messages": [{"role": "user", "content": "abandoned"}]}"#
        client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: llm\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        Thread.sleep(forTimeInterval: 0.5)
        close(client.fd)
        var record: [String: Any]?
        for _ in 0..<40 where record == nil {
            let listing = try Portless.cli(["audit", "--type", "llm.request", "--limit", "200"] + net.profile)
            let events = (try JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[String: Any]]) ?? []
            record = events.compactMap { ($0["detail"] as? String).flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } }
                .last { $0["requested"] as? String == "gpt-slow" && $0["status"] as? Int == 499 }
            if record == nil { Thread.sleep(forTimeInterval: 0.25) }
        }
        XCTAssertNotNil(record, "the abandoned call was cancelled (status 499), not left to run to its timeout")
    }

    func test_twoPolicies_onOneService_areRefusedWithAClearError() throws {
        let policy = #"{"routing": {"aliases": {"auto": {"cost": ["gpt-mini"]}}}}"#
        _ = try Portless.cli(["config", "create", "second-policy", "--type", "llm-policy.v1", "--data", policy] + net.profile)
        let result = try Portless.run("portless", ["service", "create", "llm-two", "--configs", "llm-policy,second-policy"] + net.profile)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("an LLM gateway follows exactly one"), result.output)
    }
}
