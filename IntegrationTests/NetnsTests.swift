import Crypto
import Foundation
import XCTest
@testable import Shared

/// `topology up --netns`: the quickstart's hosts as network namespaces; the enterprise host has
/// a firewall that drops every inbound connection and still serves through the overlay.
final class NetnsTests: XCTestCase {
    private var state = ""

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("--netns needs root (CAP_NET_ADMIN); skipped") }
        state = NSTemporaryDirectory() + "portless-netns-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() {
        _ = try? Portless.run("portless", ["topology", "down", "--state", state])
        try? FileManager.default.removeItem(atPath: state)
        super.tearDown()
    }

    func test_enterpriseHostInANamespace_isUnreachable_yetServesThroughTheOverlay() throws {
        _ = try Portless.cli(["topology", "up", Portless.repoRoot + "/topology/quickstart.yaml", "--state", state, "--netns"])
        let status = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/topology.json"))) as? [String: Any]
        guard let netns = status?["netns"] as? [String: Any], let id = netns["id"] as? String, let subnet = netns["subnet"] as? Int,
              let hosts = netns["hosts"] as? [String] else { throw TestFailure("no namespace layout in the state") }
        let namespace = { (host: String) in "pl\(id)-\(host)" }
        let address = { (host: String) in "10.201.\(subnet).\(10 + (hosts.firstIndex(of: host) ?? 0))" }
        let intercept = try Portless.cli(["topology", "status", "--state", state, "--intercept", "hello"]).trimmingCharacters(in: .whitespacesAndNewlines)

        let fetched = try Namespace.run(namespace("laptop"), ["curl", "-sS", "-m", "10", "http://\(intercept)/"])
        XCTAssertTrue(fetched.output.contains("caller: laptop"), fetched.output)

        let scanner = Portless.repoRoot + "/IntegrationTests/Support/portscan.py"
        let enterprise = try Namespace.run(namespace("dmz"), ["python3", scanner, address("corp")])
        XCTAssertEqual(enterprise.status, 0, enterprise.output)
        XCTAssertEqual(enterprise.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "enterprise host accepted connections on: \(enterprise.output)")
        // The same scan finds the DMZ's listeners, so an empty result above is not the scanner's fault.
        let dmz = try Namespace.run(namespace("laptop"), ["python3", scanner, address("dmz")])
        XCTAssertTrue(dmz.output.contains("1280") && dmz.output.contains("6262"), "scan of the dmz found: \(dmz.output)")

        let listeners = try Namespace.run(namespace("corp"), ["ss", "-ltnH"])
        for line in listeners.output.split(separator: "\n") {
            let local = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.map(String.init) ?? ""
            XCTAssertTrue(local.hasPrefix("127.") || local.hasPrefix("[::1]"), "enterprise host listens on \(local)")
        }

        _ = try Portless.cli(["topology", "down", "--state", state])
        let remaining = try Namespace.list()
        XCTAssertFalse(remaining.contains { $0.hasPrefix("pl\(id)-") }, "namespaces left behind: \(remaining)")
    }
}

/// The diamond with every router on its own host, and a lossy (and, where the kernel has
/// sch_netem, slow) interface on the client's edge router, which every path crosses.
final class LossyLinkTests: XCTestCase {
    private var state = ""

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("--netns needs root (CAP_NET_ADMIN); skipped") }
        state = NSTemporaryDirectory() + "portless-lossy-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() {
        _ = try? Portless.run("portless", ["topology", "down", "--state", state])
        try? FileManager.default.removeItem(atPath: state)
        super.tearDown()
    }

    func test_lossAndDelayOnALink_transfersCompleteCorrectly() throws {
        _ = try Portless.cli(["topology", "up", Portless.repoRoot + "/topology/mesh.yaml", "--state", state, "--netns"])
        let status = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/topology.json"))) as? [String: Any]
        guard let netns = status?["netns"] as? [String: Any], let id = netns["id"] as? String else { throw TestFailure("no namespaces") }
        let edge = "pl\(id)-edge-a"

        // 2 % loss and 50 ms delay where the kernel offers netem; 2 % loss by nftables otherwise.
        let netem = try Namespace.run(edge, ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "50ms", "loss", "2%"])
        if netem.status != 0 {
            let rules = NSTemporaryDirectory() + "portless-loss-\(id).nft"
            let ruleset = """
                table inet lossy {
                  chain out {
                    type filter hook output priority 0; policy accept;
                    oifname "eth0" numgen random mod 100 < 2 drop
                  }
                  chain in {
                    type filter hook input priority 0; policy accept;
                    iifname "eth0" numgen random mod 100 < 2 drop
                  }
                }

                """
            try ruleset.write(toFile: rules, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: rules) }
            let loss = try Namespace.run(edge, ["nft", "-f", rules])
            XCTAssertEqual(loss.status, 0, loss.output)
            print("sch_netem is not available in this kernel (\(netem.output.trimmingCharacters(in: .whitespacesAndNewlines))); emulating 2 % loss with nftables, without delay")
        }

        let intercept = try Portless.cli(["topology", "status", "--state", state, "--intercept", "hello"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let size = 8 << 20
        let fetched = try Namespace.run("pl\(id)-laptop", ["/bin/sh", "-c", "curl -sS -m 120 http://\(intercept)/bytes?n=\(size) | sha256sum"])
        let digest = DemoPayload.digest(of: size).map { String(format: "%02x", $0) }.joined()
        XCTAssertTrue(fetched.output.hasPrefix(digest), "digest over the lossy link: \(fetched.output)")
        let greeting = try Namespace.run("pl\(id)-laptop", ["curl", "-sS", "-m", "30", "http://\(intercept)/"])
        XCTAssertTrue(greeting.output.contains("caller: laptop"), greeting.output)
    }
}
