import Foundation
import XCTest
@testable import Shared

/// OpenTelemetry: a caller's W3C `traceparent` (an HTTP header, or MCP's `params._meta`) makes the
/// gateway's span its child, reaches the provider or MCP server as that span, and names the
/// trace in the audit record; spans reach a collector over OTLP/HTTP (a tiny one, here).
final class TracingTests: XCTestCase {
    private var network: RunningTopology?
    private var receiver: Process?
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "portless-otlp-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        network?.down()
        network = nil
        // SIGKILL: a child may inherit a blocked SIGTERM from the thread that spawned it.
        if let receiver, receiver.isRunning { kill(receiver.processIdentifier, SIGKILL) }
        receiver?.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    /// Starts the collector; returns its base URL.
    private func startReceiver() throws -> String {
        _ = Portless.environmentReady
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Portless.python)
        process.arguments = [Portless.repoRoot + "/IntegrationTests/Support/otlp_receiver.py", directory + "/spans.jsonl"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        receiver = process
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { throw TestFailure("the OTLP receiver did not start") }
            line.append(chunk)
        }
        let port = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return "http://127.0.0.1:\(port)"
    }

    /// Every span the collector received so far.
    private func spans() -> [[String: Any]] {
        let text = (try? String(contentsOfFile: directory + "/spans.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").flatMap { line -> [[String: Any]] in
            let body = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            let resources = body?["resourceSpans"] as? [[String: Any]] ?? []
            return resources.flatMap { ($0["scopeSpans"] as? [[String: Any]] ?? []).flatMap { $0["spans"] as? [[String: Any]] ?? [] } }
        }
    }

    /// Waits (exports are batched every second) for a span that `matches`.
    private func span(within seconds: Double = 15, _ matches: ([String: Any]) -> Bool) -> [String: Any]? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let found = spans().first(where: matches) { return found }
            Thread.sleep(forTimeInterval: 0.2)
        } while Date() < deadline
        return nil
    }

    private func attribute(_ span: [String: Any], _ key: String) -> String? {
        ((span["attributes"] as? [[String: Any]])?.first { $0["key"] as? String == key }?["value"] as? [String: Any])?["stringValue"] as? String
    }

    private static func hex(_ count: Int) -> String { (0..<count).map { _ in String("0123456789abcdef".randomElement()!) }.joined() }

    func test_llmRequest_withTraceparent_isAChildSpan_reachesTheProvider_andNamesTheTraceInTheAudit() throws {
        let collector = try startReceiver()
        let net = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/llm-providers.yaml",
                                      environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": collector, "FAKE_OPENAI_KEY": "sk-test-openai"])
        network = net
        let traceID = Self.hex(32), callerSpan = Self.hex(16)
        let traceparent = "00-\(traceID)-\(callerSpan)-01"
        let llm = "http://" + (try net.interceptAddress("llm", tunneler: "agent")) + "/v1"
        _ = try MetricsTests.python(Portless.repoRoot + "/IntegrationTests/Support/metrics_check.py", ["chat", llm, "gpt-mini", "1", traceparent],
                                    timeout: 60)

        guard let gatewaySpan = span({ $0["traceId"] as? String == traceID }) else {
            return XCTFail("no span of trace \(traceID) reached the collector: \(spans())")
        }
        XCTAssertEqual(gatewaySpan["parentSpanId"] as? String, callerSpan, "the gateway's span is the caller's span's child")
        XCTAssertEqual(attribute(gatewaySpan, "portless.identity"), "agent")
        XCTAssertTrue((gatewaySpan["name"] as? String)?.hasPrefix("llm POST") == true, "\(gatewaySpan)")
        let gatewaySpanID = gatewaySpan["spanId"] as? String ?? ""

        // The provider was called as the gateway's span.
        let fakes = try TCPClient(try appAddress("fakes", in: net))
        fakes.send("GET /_requests HTTP/1.1\r\nHost: fakes\r\nConnection: close\r\n\r\n")
        let text = String(decoding: fakes.readToEnd().data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"traceparent\": \"00-\(traceID)-\(gatewaySpanID)-01\"") || text.contains("\"traceparent\":\"00-\(traceID)-\(gatewaySpanID)-01\""),
                      "the provider did not receive the gateway's traceparent: \(text.suffix(1500))")

        let audit = try waitForAudit("llm.request", containing: traceID, in: net)
        XCTAssertTrue(audit.contains(#"\"traceId\":\"\#(traceID)\""#), audit)

        // Each circuit dial is a span of its own, from the dialing tunneler.
        XCTAssertNotNil(span { $0["name"] as? String == "circuit dial" && attribute($0, "portless.service") == "llm" }, "no dial span")

        // A malformed traceparent is ignored (a new trace), never an error.
        _ = try MetricsTests.python(Portless.repoRoot + "/IntegrationTests/Support/metrics_check.py",
                                    ["chat", llm, "gpt-mini", "1", "00-\(traceID.uppercased())-\(callerSpan)-01"], timeout: 60)
    }

    func test_mcpCall_withTraceparentInMeta_reachesTheServer_andNamesTheTraceInTheAudit() throws {
        let collector = try startReceiver()
        let net = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/mcp-edges.yaml",
                                      environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": collector])
        network = net
        let traceID = Self.hex(32), callerSpan = Self.hex(16)
        let address = try net.interceptAddress("edges", tunneler: "alice")
        let body = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"edge__trace_context","arguments":{},"#
            + #""_meta":{"traceparent":"00-\#(traceID)-\#(callerSpan)-01","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#
        let client = try TCPClient(address, timeoutSeconds: 30)
        client.send("POST /mcp HTTP/1.1\r\nHost: \(address)\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                    + "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: edge__trace_context\r\nConnection: close\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)
        let answer = String(decoding: client.readToEnd().data, as: UTF8.self)
        // The server saw the gateway's span as its parent: the caller's trace, another span.
        let seen = answer.range(of: "00-\(traceID)-").map { String(answer[$0.lowerBound...].prefix(55)) } ?? ""
        XCTAssertTrue(seen.hasPrefix("00-\(traceID)-") && !seen.contains(callerSpan), "the MCP server got: \(answer)")

        guard let gatewaySpan = span({ $0["traceId"] as? String == traceID }) else {
            return XCTFail("no span of trace \(traceID): \(spans())")
        }
        XCTAssertEqual(gatewaySpan["parentSpanId"] as? String, callerSpan)
        XCTAssertEqual(gatewaySpan["name"] as? String, "mcp tools/call")
        XCTAssertEqual(attribute(gatewaySpan, "portless.identity"), "alice-agent")
        XCTAssertTrue(seen.contains(gatewaySpan["spanId"] as? String ?? "-"), "the server's parent is the gateway's span: \(seen)")

        let audit = try waitForAudit("mcp.request", containing: traceID, in: net)
        XCTAssertTrue(audit.contains(#"\"traceId\":\"\#(traceID)\""#), audit)
        // The trail of one trace: its records, and nothing else.
        let byTrace = try JSONSerialization.jsonObject(with: Data(try Portless.cli(["audit", "--trace", traceID] + net.profile).utf8)) as? [[String: Any]] ?? []
        XCTAssertEqual(byTrace.map { $0["type"] as? String }, ["mcp.request"])
        XCTAssertTrue((byTrace.first?["detail"] as? String)?.contains(traceID) == true, "\(byTrace)")
        XCTAssertThrowsError(try Portless.cli(["audit", "--trace", "%25"] + net.profile), "a trace id that is no trace id must be refused")
    }

    private func appAddress(_ app: String, in net: RunningTopology) throws -> String {
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: net.state + "/topology.json"))) as? [String: Any]
        guard let address = (state?["ports"] as? [String: String])?["app/\(app)"] else { throw TestFailure("no app \(app)") }
        return address
    }

    /// The audit trail of `type` once it holds `text` (gateways report in batches).
    private func waitForAudit(_ type: String, containing text: String, in net: RunningTopology) throws -> String {
        let deadline = Date().addingTimeInterval(15)
        var trail = ""
        repeat {
            trail = try Portless.cli(["audit", "--type", type] + net.profile)
            if trail.contains(text) { return trail }
            Thread.sleep(forTimeInterval: 0.3)
        } while Date() < deadline
        return trail
    }
}
