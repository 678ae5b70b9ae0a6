import Foundation
import XCTest
@testable import Shared

/// The APIs agents speak, through the agent's intercept with the official clients: OpenAI's
/// Responses API and Anthropic's Messages API, translated to every provider (the fakes of
/// IntegrationTests/Support/fake_providers.py, llm-providers.yaml) or passed through untouched
/// to Anthropic; model access per identity on all three APIs; usage estimated when a stream is cut.
final class AgentAPIsTests: XCTestCase {
    nonisolated(unsafe) static var network: RunningTopology?
    nonisolated(unsafe) static var startError: String?

    override class func setUp() {
        super.setUp()
        for (name, value) in ["FAKE_OPENAI_KEY": "sk-test-openai", "FAKE_AZURE_KEY": "azure-test-key", "FAKE_ANTHROPIC_KEY": "sk-ant-test",
                              "FAKE_AWS_ACCESS": "AKIDEXAMPLE", "FAKE_AWS_SECRET": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"] {
            setenv(name, value, 1)
        }
        do { network = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/llm-providers.yaml") } catch { startError = "\(error)" }
    }

    override class func tearDown() {
        network?.down()
        super.tearDown()
    }

    private var net: RunningTopology! { Self.network }  // safe: setUpWithError throws when it is nil

    override func setUpWithError() throws {
        if Self.network == nil { throw TestFailure("topology did not start: \(Self.startError ?? "unknown")") }
    }

    private func base(_ tunneler: String = "agent") -> String { "http://\(net.interceptAddress("llm", of: tunneler))" }

    private func run(_ arguments: [String]) throws -> [String: Any] {
        _ = Portless.environmentReady
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Portless.python)
        process.arguments = [Portless.repoRoot + "/IntegrationTests/Support/agent_apis.py"] + arguments
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
            throw TestFailure("agent_apis.py \(arguments.prefix(3)) failed: \(String(decoding: errors.current, as: UTF8.self).suffix(2500))")
        }
        return json
    }

    private func responses(_ command: String, _ model: String, _ rest: [String] = [], as tunneler: String = "agent") throws -> [String: Any] {
        try run(["responses", command, base(tunneler) + "/v1", model] + rest)
    }

    private func messages(_ command: String, _ model: String, as tunneler: String = "agent") throws -> [String: Any] {
        try run(["messages", command, base(tunneler), model])
    }

    /// What the fake providers received, newest last.
    private func received() throws -> [[String: Any]] {
        guard let address = net.appAddress("fakes") else { throw TestFailure("no fakes app") }
        let fakes = try TCPClient(address)
        fakes.send("GET /_requests HTTP/1.1\r\nHost: fakes\r\nConnection: close\r\n\r\n")
        let text = String(decoding: fakes.readToEnd().data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return [] }
        return (try JSONSerialization.jsonObject(with: Data(text[split.upperBound...].utf8)) as? [[String: Any]]) ?? []
    }

    private func audit(_ type: String) throws -> [[String: Any]] {
        let json = try Portless.cli(["audit", "--type", type, "--limit", "500"] + net.profile)
        return (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]) ?? []
    }

    private func detail(_ event: [String: Any]) -> [String: Any] {
        ((try? JSONSerialization.jsonObject(with: Data((event["detail"] as? String ?? "{}").utf8))) as? [String: Any]) ?? [:]
    }

    // MARK: Responses API

    func test_responses_textJsonToolsStreamingAndPrevious_onOpenAIAnthropicAndBedrock() throws {
        for (model, says) in [("gpt-mini", "openai says"), ("claude", "anthropic says"), ("nova", "bedrock says")] {
            let text = try responses("text", model)
            XCTAssertTrue((text["text"] as? String ?? "").hasPrefix(says), "\(model) text: \(text)")
            XCTAssertEqual(text["status"] as? String, "completed", "\(model): \(text)")
            XCTAssertGreaterThan(((text["usage"] as? [String: Any])?["output_tokens"] as? Int) ?? 0, 0, "\(model) usage: \(text)")

            let json = try responses("json", model)
            let parsed = json["parsed"] as? [String: Any]
            XCTAssertNotNil(parsed?["city"] as? String, "\(model): the answer does not follow the schema: \(json)")
            XCTAssertNotNil(parsed?["population"] as? Int, "\(model): the answer does not follow the schema: \(json)")

            let tools = try responses("tools", model)
            XCTAssertEqual(tools["tool"] as? String, "search_tickets", "\(model) tools: \(tools)")
            XCTAssertEqual((tools["arguments"] as? [String: Any])?["query"] as? String, "vpn", "\(model) tools: \(tools)")
            XCTAssertTrue((tools["answer"] as? String ?? "").contains("VPN down in Lyon"), "\(model): the function's output did not reach the model: \(tools)")

            let stream = try responses("stream", model)
            let types = stream["types"] as? [String] ?? []
            XCTAssertEqual(types.first, "response.created", "\(model): \(types)")
            XCTAssertEqual(types.last, "response.completed", "\(model): \(types)")
            for expected in ["response.in_progress", "response.output_item.added", "response.content_part.added", "response.output_text.delta",
                             "response.output_text.done", "response.output_item.done"] {
                XCTAssertTrue(types.contains(expected), "\(model): no \(expected) in \(types)")
            }
            XCTAssertTrue((stream["text"] as? String ?? "").hasPrefix(says), "\(model) stream: \(stream)")
            XCTAssertEqual(stream["text"] as? String, stream["final"] as? String, "\(model): the deltas and the final response differ")
        }
        let previous = try responses("previous", "gpt-mini")
        let sent = try received().last { ($0["provider"] as? String) == "openai" }
        let history = String(decoding: try JSONSerialization.data(withJSONObject: sent?["body"] ?? [:]), as: UTF8.self)
        XCTAssertTrue(history.contains("My name is Ada Lovelace"), "previous_response_id did not carry the earlier turn: \(history.prefix(500))")
        XCTAssertNotNil(previous["text"], "\(previous)")
    }

    func test_storedResponses_belongToTheirIdentity() throws {
        let first = try responses("text", "gpt-mini")
        let id = try XCTUnwrap(first["id"] as? String)
        XCTAssertEqual(try responses("get", "gpt-mini", [id])["id"] as? String, id)
        let stolen = try responses("get", "gpt-mini", [id], as: "intern")
        XCTAssertEqual((stolen["error"] as? [String: Any])?["status"] as? Int, 404, "another identity read the response: \(stolen)")
        let continued = try run(["responses", "text", base("intern") + "/v1", "gpt-mini"])
        XCTAssertNotNil(continued["text"], "\(continued)")
        XCTAssertEqual((try responses("delete", "gpt-mini", [id], as: "intern")["error"] as? [String: Any])?["status"] as? Int, 404,
                       "another identity deleted the response")
        XCTAssertEqual(try responses("delete", "gpt-mini", [id])["deleted"] as? Bool, true)
        XCTAssertEqual((try responses("get", "gpt-mini", [id])["error"] as? [String: Any])?["status"] as? Int, 404, "a deleted response is gone")
    }

    // MARK: Messages API

    func test_messages_passThroughToAnthropic_untouched() throws {
        let text = try messages("text", "claude")
        XCTAssertTrue((text["text"] as? String ?? "").hasPrefix("anthropic says"), "\(text)")
        XCTAssertEqual(text["model"] as? String, "claude")
        let sent = try received().last { ($0["provider"] as? String) == "anthropic" }
        let body = sent?["body"] as? [String: Any] ?? [:]
        let system = body["system"] as? [[String: Any]]
        XCTAssertEqual((system?.first?["cache_control"] as? [String: Any])?["type"] as? String, "ephemeral",
                       "cache_control did not reach Anthropic as the client wrote it: \(body)")
        XCTAssertEqual((sent?["headers"] as? [String: Any])?["anthropic-beta"] as? String, "prompt-caching-2024-07-31", "the beta header was not passed on")
        XCTAssertEqual(body["model"] as? String, "claude-sonnet-4-5", "the model id is the provider's")

        let tools = try messages("tools", "claude")
        XCTAssertEqual(tools["stop"] as? String, "tool_use", "\(tools)")
        XCTAssertEqual((tools["input"] as? [String: Any])?["query"] as? String, "vpn")
        XCTAssertTrue((tools["answer"] as? String ?? "").contains("VPN down in Lyon"), "\(tools)")

        XCTAssertTrue((try messages("image", "claude")["text"] as? String ?? "").contains("saw 1 image"))
        let stream = try messages("stream", "claude")
        let wire = (stream["types"] as? [String] ?? []).filter(Self.wireEvents.contains)
        XCTAssertEqual(wire.first, "message_start", "\(stream)")
        XCTAssertEqual(Array(wire.suffix(3)), ["content_block_stop", "message_delta", "message_stop"], "\(stream)")
        XCTAssertTrue((stream["text"] as? String ?? "").hasPrefix("anthropic says"), "\(stream)")
        XCTAssertEqual(try messages("count", "claude")["input_tokens"] as? Int ?? 0 > 1000, true, "count_tokens is Anthropic's own for its models")
    }

    func test_messages_translatedToOpenAI_withTheExactStream() throws {
        let text = try messages("text", "gpt-mini")
        XCTAssertTrue((text["text"] as? String ?? "").hasPrefix("openai says"), "\(text)")
        XCTAssertEqual(text["stop"] as? String, "end_turn")
        let tools = try messages("tools", "gpt-mini")
        XCTAssertEqual(tools["stop"] as? String, "tool_use", "\(tools)")
        XCTAssertEqual(tools["tool"] as? String, "search_tickets")
        XCTAssertTrue((tools["answer"] as? String ?? "").contains("VPN down in Lyon"), "the tool result did not reach OpenAI: \(tools)")
        XCTAssertTrue((try messages("image", "gpt-mini")["text"] as? String ?? "").contains("saw 1 image"), "the image did not reach OpenAI")

        let stream = try messages("stream", "gpt-mini")
        let types = stream["types"] as? [String] ?? []
        // The SDK's stream helper adds a `text` event per delta; the wire events must be in Anthropic's order.
        let wire = types.filter(Self.wireEvents.contains)
        XCTAssertEqual(wire.first, "message_start", "\(types)")
        XCTAssertEqual(Array(wire.suffix(3)), ["content_block_stop", "message_delta", "message_stop"], "\(types)")
        XCTAssertTrue(wire.contains("content_block_delta"))
        XCTAssertTrue((stream["text"] as? String ?? "").hasPrefix("openai says"), "\(stream)")
        XCTAssertEqual(stream["stop"] as? String, "end_turn")
        let count = try messages("count", "gpt-mini")["input_tokens"] as? Int ?? 0
        XCTAssertTrue((5...40).contains(count), "an estimated count for a non-Anthropic model: \(count)")

        let events = try audit("llm.request").map(detail)
        XCTAssertTrue(events.contains { $0["ingress"] as? String == "messages" }, "llm.request records name the ingress API")
    }

    /// The Messages stream's own events (the SDK's helper adds derived ones such as `text`).
    static let wireEvents: Set<String> = ["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]

    // MARK: policy on every API

    func test_aModelAnIdentityMayNotUse_isAbsentOnAllThreeAPIs() throws {
        let chat = try responses("chat", "claude", as: "intern")
        XCTAssertEqual((chat["error"] as? [String: Any])?["status"] as? Int, 404, "chat completions served a model the intern may not use: \(chat)")
        let listed = try responses("chat", "gpt-mini", as: "intern")
        XCTAssertEqual(listed["models"] as? [String], ["gpt-mini"], "the intern's /v1/models lists what it may use and nothing else")
        let models = try run(["responses", "text", base("intern") + "/v1", "claude"])
        XCTAssertEqual((models["error"] as? [String: Any])?["status"] as? Int, 404, "Responses served a model the intern may not use: \(models)")
        let message = try messages("text", "claude", as: "intern")
        XCTAssertEqual((message["error"] as? [String: Any])?["status"] as? Int, 404, "Messages served a model the intern may not use: \(message)")
        XCTAssertEqual((message["error"] as? [String: Any])?["type"] as? String, "not_found_error", "\(message)")
        let count = try messages("count", "claude", as: "intern")
        XCTAssertEqual((count["error"] as? [String: Any])?["status"] as? Int, 404, "\(count)")
        let allowed = try messages("text", "gpt-mini", as: "intern")
        XCTAssertTrue((allowed["text"] as? String ?? "").hasPrefix("openai says"), "\(allowed)")
    }

    // MARK: usage

    func test_aStreamCutBeforeItsUsage_isAccountedAsEstimated_andAnUnpricedModelIsNotFree() throws {
        let cutStream = try responses("stream", "gpt-break")
        XCTAssertEqual(cutStream["failed"] as? Bool, true, "a cut stream must end in response.failed, not look complete: \(cutStream)")
        XCTAssertEqual((cutStream["types"] as? [String])?.last, "response.failed", "\(cutStream)")
        _ = try responses("text", "gpt-unpriced")
        var events: [[String: Any]] = []
        for _ in 0..<50 {
            events = try audit("llm.request").map(detail)
            if events.contains(where: { $0["requested"] as? String == "gpt-break" }) && events.contains(where: { $0["requested"] as? String == "gpt-unpriced" }) { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let cut = events.last { $0["requested"] as? String == "gpt-break" } ?? [:]
        XCTAssertEqual(cut["estimated"] as? Bool, true, "the cut stream's usage is not marked estimated: \(cut)")
        XCTAssertGreaterThan(cut["inputTokens"] as? Int ?? 0, 0, "\(cut)")
        let unpriced = events.last { $0["requested"] as? String == "gpt-unpriced" } ?? [:]
        XCTAssertEqual(unpriced["unpriced"] as? Bool, true, "\(unpriced)")
        var table = ""
        for _ in 0..<50 {
            table = try Portless.cli(["usage", "--by", "model"] + net.profile)
            if table.contains("gpt-unpriced") && table.contains("gpt-break") { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let unpricedRow = table.split(separator: "\n").first { $0.hasPrefix("gpt-unpriced") } ?? ""
        XCTAssertTrue(unpricedRow.contains("unpriced") && !unpricedRow.contains("0.000000"), "an unpriced model must not read as $0: \(unpricedRow)")
        let cutRow = table.split(separator: "\n").first { $0.hasPrefix("gpt-break") } ?? ""
        XCTAssertTrue(cutRow.contains("estimated"), "\(cutRow)")
    }
}
