import Foundation
import XCTest
@testable import Shared

/// Every controller, router and tunneler of a topology serves /metrics; the official Prometheus
/// client parses each page, and the counters move by exactly what the test did.
final class MetricsTests: XCTestCase {
    private var network: RunningTopology?

    override func tearDown() {
        network?.down()
        network = nil
        super.tearDown()
    }

    private struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    /// Runs IntegrationTests/Support/metrics_check.py and returns its JSON answer.
    private func check(_ arguments: [String], timeout: TimeInterval = 90) throws -> [String: Any] {
        try Self.python(Portless.repoRoot + "/IntegrationTests/Support/metrics_check.py", arguments, timeout: timeout)
    }

    static func python(_ script: String, _ arguments: [String], timeout: TimeInterval) throws -> [String: Any] {
        _ = Portless.environmentReady
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Portless.python)
        process.arguments = [script] + arguments
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
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard process.terminationStatus == 0, let answer = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw TestFailure("\((script as NSString).lastPathComponent) \(arguments.prefix(2)) failed (\(process.terminationStatus)): "
                              + String(decoding: errors.current, as: UTF8.self).suffix(2500))
        }
        return answer
    }

    private func scrape(_ process: String, in net: RunningTopology) throws -> [Sample] {
        let processes = (net.status["processes"] as? [[String: Any]]) ?? []
        guard let address = processes.first(where: { $0["name"] as? String == process })?["metrics"] as? String else {
            throw TestFailure("\(process) has no metrics address in the topology state: \(processes)")
        }
        let answer = try check(["scrape", "http://\(address)/metrics"])
        return ((answer["samples"] as? [[Any]]) ?? []).compactMap { sample in
            guard sample.count == 3, let name = sample[0] as? String, let labels = sample[1] as? [String: String],
                  let value = (sample[2] as? NSNumber)?.doubleValue else { return nil }
            return Sample(name: name, labels: labels, value: value)
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    private func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    func test_metrics_parse_andCountWhatTheTestDid() throws {
        let net = try RunningTopology("quickstart.yaml")
        network = net
        let mcp = "http://" + (try net.interceptAddress("mcp", tunneler: "support-agent")) + "/mcp"
        let llm = "http://" + (try net.interceptAddress("llm", tunneler: "support-agent")) + "/v1"
        let agent = Portless.repoRoot + "/topology/mcp/mcp_agent.py"
        // Both upstreams up: the echo tool is listed.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let listed = (try? Self.python(agent, ["inventory", mcp], timeout: 30))?["tools"] as? [String] ?? []
            if listed.contains("tickets__echo") { break }
            Thread.sleep(forTimeInterval: 0.3)
        }

        let before = (enterprise: try scrape("enterprise", in: net), laptop: try scrape("laptop", in: net),
                      router: try scrape("edge-1", in: net), controller: try scrape("controller", in: net))

        let toolCalls = 3, chats = 2, fetches = 4
        for index in 0..<toolCalls {
            let answer = try Self.python(agent, ["call", mcp, "tickets__echo", #"{"text": "call \#(index)"}"#], timeout: 60)
            XCTAssertNotNil(answer["result"], "\(answer)")
        }
        // A name the caller invents is refused, and never becomes a label.
        let invented = "tickets__invented_by_the_caller_7q"
        let refused = try Self.python(agent, ["call", mcp, invented, "{}"], timeout: 60)
        XCTAssertNotNil(refused["error"] ?? (refused["result"] as? [String: Any])?["isError"], "\(refused)")
        XCTAssertEqual(try check(["chat", llm, "mock-small", String(chats)])["ok"] as? Int, chats)
        for _ in 0..<fetches {
            let client = try TCPClient(net.interceptAddress("hello", of: "laptop"))
            client.send("GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
            XCTAssertTrue(String(decoding: client.readToEnd().data, as: UTF8.self).contains("caller: laptop"))
        }

        let enterprise = try scrape("enterprise", in: net)
        let echo = ["gateway": "mcp", "identity": "support-agent", "method": "tools/call", "target": "tickets__echo", "outcome": "ok"]
        XCTAssertEqual(value(enterprise, "portless_gateway_requests_total", echo) - value(before.enterprise, "portless_gateway_requests_total", echo),
                       Double(toolCalls), "tool calls counted")
        XCTAssertEqual(value(enterprise, "portless_gateway_request_duration_seconds_count", ["gateway": "mcp", "method": "tools/call"])
                       - value(before.enterprise, "portless_gateway_request_duration_seconds_count", ["gateway": "mcp", "method": "tools/call"]),
                       Double(toolCalls + 1), "every tools/call has its latency observed")
        XCTAssertFalse(enterprise.contains { $0.labels.values.contains(invented) }, "a caller's invented name became a label")
        let chat = ["gateway": "llm", "identity": "support-agent", "method": "chat.completions", "target": "mock-small", "outcome": "ok"]
        XCTAssertEqual(value(enterprise, "portless_gateway_requests_total", chat) - value(before.enterprise, "portless_gateway_requests_total", chat),
                       Double(chats), "chat completions counted")
        let tokens = ["identity": "support-agent", "model": "mock-small", "provider": "mock"]
        XCTAssertGreaterThan(value(enterprise, "portless_llm_tokens_total", tokens) - value(before.enterprise, "portless_llm_tokens_total", tokens), 0)
        XCTAssertGreaterThan(value(enterprise, "portless_llm_cost_usd_total", tokens) - value(before.enterprise, "portless_llm_cost_usd_total", tokens), 0)
        XCTAssertEqual(value(enterprise, "portless_gateway_upstream_up", ["gateway": "mcp", "upstream": "tickets"]), 1)

        let laptop = try scrape("laptop", in: net)
        let dials = ["service": "hello", "outcome": "ok"]
        XCTAssertEqual(value(laptop, "portless_tunnel_dials_total", dials) - value(before.laptop, "portless_tunnel_dials_total", dials),
                       Double(fetches), "dials counted")
        XCTAssertGreaterThan(value(laptop, "portless_tunnel_bytes_total", ["direction": "received"])
                             - value(before.laptop, "portless_tunnel_bytes_total", ["direction": "received"]), 0)

        let router = try scrape("edge-1", in: net)
        // Every dial above crossed the one router: hello, each MCP session's, the chats'.
        XCTAssertGreaterThanOrEqual(value(router, "portless_router_circuits_opened_total") - value(before.router, "portless_router_circuits_opened_total"),
                                    Double(fetches))
        XCTAssertGreaterThan(value(router, "portless_router_bytes_total", ["direction": "to_host"])
                             - value(before.router, "portless_router_bytes_total", ["direction": "to_host"]), 0)

        let controller = try scrape("controller", in: net)
        let granted = value(controller, "portless_controller_dials_total", ["outcome": "granted"])
            - value(before.controller, "portless_controller_dials_total", ["outcome": "granted"])
        let opened = value(controller, "portless_controller_audit_events_total", ["type": "circuit.opened"])
            - value(before.controller, "portless_controller_audit_events_total", ["type": "circuit.opened"])
        XCTAssertGreaterThanOrEqual(granted, Double(fetches))
        XCTAssertEqual(granted, opened, "every granted dial is an opened circuit in the trail")
        XCTAssertEqual(value(controller, "portless_controller_routers_online"), 1)
    }

    /// The metrics listener answers what is not a scrape with an HTTP error and keeps serving.
    func test_metricsListener_refusesWhatIsNotAScrape() throws {
        let net = try RunningTopology(path: Portless.repoRoot + "/IntegrationTests/Support/dataplane.yaml")
        network = net
        let processes = (net.status["processes"] as? [[String: Any]]) ?? []
        guard let address = processes.first(where: { $0["name"] as? String == "edge-1" })?["metrics"] as? String else {
            throw TestFailure("no metrics address: \(processes)")
        }
        // Ports `up` picks lie outside the kernel's ephemeral range, which outgoing connections draw from.
        let range = ((try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        for process in processes {
            guard range.count == 2, let port = (process["metrics"] as? String)?.split(separator: ":").last.flatMap({ Int($0) }) else { continue }
            XCTAssertFalse((range[0]...range[1]).contains(port), "\(process["name"] ?? "?") got ephemeral port \(port)")
        }
        for (request, status) in [("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "405"), ("GET /admin HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
                                  ("\u{16}\u{03}\u{01}garbage\r\n\r\n", "400")] {
            let client = try TCPClient(address)
            client.send(request)
            let answer = String(decoding: client.readToEnd().data, as: UTF8.self)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 \(status)"), "\(request.debugDescription): \(answer)")
        }
        let oversize = try TCPClient(address)
        oversize.send("GET /metrics HTTP/1.1\r\n" + String(repeating: "X-Filler: 0123456789\r\n", count: 600))
        XCTAssertTrue(String(decoding: oversize.readToEnd().data, as: UTF8.self).hasPrefix("HTTP/1.1 431"))
        let scrape = try TCPClient(address)
        scrape.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        let page = String(decoding: scrape.readToEnd().data, as: UTF8.self)
        XCTAssertTrue(page.hasPrefix("HTTP/1.1 200") && page.contains("portless_router_circuits_open"), page)
    }
}
