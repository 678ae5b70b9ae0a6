import Foundation
import GatewayKit
import Logging
import XCTest
@testable import MCPGateway
@testable import Shared

/// How the gateway learns which revision an HTTP upstream speaks.
final class UpstreamHandshakeTests: XCTestCase {
    private var server: Process?

    override func tearDown() {
        // SIGKILL: a child spawned from a pool thread inherits its blocked SIGTERM.
        if let server, server.isRunning { kill(server.processIdentifier, SIGKILL) }
        server?.waitUntilExit()
        super.tearDown()
    }

    private var repo: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// A stateless server whose first `server/discover` outlasts the call timeout is slow, not
    /// old: the gateway tries again and settles on 2026-07-28, never on the session handshake.
    func test_aSlowFirstDiscover_isRetried_notTakenForAnOlderServer() async throws {
        let python = ProcessInfo.processInfo.environment["PORTLESS_PYTHON"] ?? repo + "/.build/venv/bin/python"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [repo + "/IntegrationTests/Support/mcp/slow_discover_server.py", "0", "2"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        server = process
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { return XCTFail("the fake server did not start") }
            line.append(chunk)
        }
        let port = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)

        let config = MCPGatewayConfig(upstreams: [UpstreamConfig(name: "slow", url: "http://127.0.0.1:\(port)/mcp", timeoutMs: 500)])
        let control = FlakyControl()
        control.becomeReachable()
        let gateway = MCPGateway(service: "slow", config: config, control: control, logger: Logger(label: "test"))
        await gateway.start()
        defer { Task { await gateway.stop() } }
        let deadline = Date().addingTimeInterval(20)
        var status = ""
        while Date() < deadline {
            status = await gateway.catalog.status["slow"] ?? ""
            if status.hasPrefix("up") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertEqual(status, "up (2026-07-28)", "the upstream was settled on: \(status)")
    }
}
