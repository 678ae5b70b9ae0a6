import Foundation
import XCTest
@testable import Shared

/// The operator console on topology/quickstart.yaml, over HTTPS as a browser speaks it and in a
/// real headless Chromium (IntegrationTests/Support/console_browser.py): sign-in
/// and its cookie, the CSRF token every change needs, the Content-Security-Policy, and pages that
/// show what this test did (a router, an MCP call, an LLM request's cost) and change what the CLI
/// then sees. (IntegrationTests/Support/console_check.py plays the browser and the attacker.)
final class ConsoleTests: XCTestCase {
    private var network: RunningTopology?

    override func tearDown() {
        network?.down()
        super.tearDown()
    }

    func test_console_signsIn_refusesForgedChanges_andShowsAndChangesTheNetwork() throws {
        let net = try RunningTopology("quickstart.yaml")
        network = net
        // An MCP call and an LLM request, for the audit and spend pages.
        let mcp = (net.status["intercepts"] as? [[String: Any]])?.first { $0["tunneler"] as? String == "support-agent" && $0["service"] as? String == "mcp" }?["address"] as? String ?? ""
        _ = Portless.environmentReady
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: Portless.python)
        agent.arguments = [Portless.repoRoot + "/topology/mcp/mcp_agent.py", "call", "http://\(mcp)/mcp", "tickets__echo", #"{"text": "from the console test"}"#]
        agent.standardOutput = FileHandle.nullDevice
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        agent.waitUntilExit()
        XCTAssertEqual(agent.terminationStatus, 0, "the MCP call failed")
        let llm = try TCPClient(net.interceptAddress("llm", of: "support-agent"), timeoutSeconds: 30)
        let body = #"{"model": "mock-small", "messages": [{"role": "user", "content": "hello from the console test"}]}"#
        llm.send("POST /v1/chat/completions HTTP/1.1\r\nHost: llm\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        XCTAssertTrue(String(decoding: llm.readToEnd().data, as: UTF8.self).hasPrefix("HTTP/1.1 200"), "the LLM request failed")
        Thread.sleep(forTimeInterval: 3)  // gateways report usage and audit in batches

        let profile = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: net.state + "/profile.json"))) as? [String: Any]
        guard let controller = profile?["controller"] as? String else { throw TestFailure("no controller URL in \(net.state)/profile.json") }
        let credential = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: net.state + "/controller/admin.json"))) as? [String: Any]
        let checker = Process()
        checker.executableURL = URL(fileURLWithPath: Portless.python)
        checker.arguments = [Portless.repoRoot + "/IntegrationTests/Support/console_check.py", controller, net.state + "/controller/ca.pem",
                             credential?["password"] as? String ?? "", "edge-1",
                             String(decoding: try JSONSerialization.data(withJSONObject: ["support-agent": MCPGatewayTests.supportTools,
                                                                                          "analyst-agent": MCPGatewayTests.analystTools]), as: UTF8.self)]
        let out = Pipe()
        checker.standardOutput = out
        try checker.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        checker.waitUntilExit()
        let result = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        XCTAssertEqual(result?["ok"] as? Bool, true, "console checks failed: \(result?["failures"] ?? output)")

        // The same in a real headless Chromium, through its forms.
        let browser = Process()
        browser.executableURL = URL(fileURLWithPath: Portless.python)
        browser.arguments = [Portless.repoRoot + "/IntegrationTests/Support/console_browser.py", controller, credential?["password"] as? String ?? "", "edge-1"]
        let browserOut = Pipe()
        browser.standardOutput = browserOut
        try browser.run()
        let browserOutput = String(decoding: browserOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        browser.waitUntilExit()
        let browserResult = try? JSONSerialization.jsonObject(with: Data(browserOutput.utf8)) as? [String: Any]
        XCTAssertEqual(browserResult?["ok"] as? Bool, true, "Chromium checks failed: \(browserResult?["failures"] ?? browserOutput)")

        // What the forms changed, the CLI sees; what the forged forms tried, it does not.
        let identities = try Portless.cli(["identity", "list"] + net.profile)
        XCTAssertTrue(identities.contains("console-made") && identities.contains("browser-made"), identities)
        XCTAssertFalse(identities.contains("forged"), "a change without the CSRF token went through")
        XCTAssertFalse(identities.contains("nosession"), "a change without a session went through")
        let policies = try Portless.cli(["policy", "list", "service"] + net.profile)
        XCTAssertTrue(policies.contains("auditors-dial-demo") && policies.contains("browser-dial-demo"), policies)
    }
}
