import Foundation
import XCTest

/// Choosing among several terminators of one service: precedence first, and a terminator
/// whose service is down is skipped.
final class TerminatorTests: XCTestCase {
    private func topology(siteA address: String) -> String {
        """
        network: terminators
        routers:
          - name: edge-1
        identities:
          - {name: laptop, roles: [clients]}
          - {name: site-a, roles: [hosts]}
          - {name: site-b, roles: [hosts]}
        services:
          - {name: hello, roles: [demo]}
        service_policies:
          - {name: dial, type: dial, identities: ["#clients"], services: ["#demo"]}
          - {name: bind, type: bind, identities: ["#hosts"], services: ["#demo"]}
        apps:
          - name: hello-http
            command: [portless, demo-http, --listen, "127.0.0.1:{port}"]
        tunnelers:
          - name: laptop
            identity: laptop
            intercepts:
              - service: hello
          - name: site-a
            identity: site-a
            hosts:
              - {service: hello, \(address), precedence: required}
          - name: site-b
            identity: site-b
            hosts:
              - {service: hello, app: hello-http, precedence: default}

        """
    }

    private func hostOfNewCircuit(_ intercept: String, profile: [String]) throws -> String {
        let client = try TCPClient(intercept)
        client.send("GET /hold HTTP/1.1\r\nHost: demo\r\n\r\n")
        guard client.read(until: "holding").contains("holding") else { throw TestFailure("no answer through the overlay") }
        let network = try JSONSerialization.jsonObject(with: Data(try Portless.cli(["network"] + profile).utf8)) as? [String: Any]
        return ((network?["circuits"] as? [[String: Any]])?.last?["host"] as? String) ?? ""
    }

    func test_deadTerminatorIsSkipped_andRequiredPrecedenceWinsWhenHealthy() throws {
        let dir = NSTemporaryDirectory() + "portless-terminators-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // site-a's service is down (nothing listens on port 9); site-b's works.
        try topology(siteA: "address: 127.0.0.1:9").write(toFile: dir + "/down.yaml", atomically: true, encoding: .utf8)
        try topology(siteA: "app: hello-http").write(toFile: dir + "/up.yaml", atomically: true, encoding: .utf8)
        let state = dir + "/state"
        _ = try Portless.cli(["topology", "up", dir + "/down.yaml", "--state", state])
        defer { _ = try? Portless.run("portless", ["topology", "down", "--state", state]) }
        let profile = ["--profile", state + "/profile.json"]
        let intercept = try Portless.cli(["topology", "status", "--state", state, "--intercept", "hello"]).trimmingCharacters(in: .whitespacesAndNewlines)

        XCTAssertEqual(try hostOfNewCircuit(intercept, profile: profile), "site-b", "the dead required terminator was not skipped")

        let applied = try Portless.cli(["topology", "apply", dir + "/up.yaml", "--state", state])
        XCTAssertTrue(applied.contains("restarted tunneler site-a"), applied)
        XCTAssertEqual(try hostOfNewCircuit(intercept, profile: profile), "site-a", "required precedence did not win")
    }
}
