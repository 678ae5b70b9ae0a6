import Foundation
import XCTest

/// Operating networks from topology files: scale, apply, bundle.
final class TopologyOperationsTests: XCTestCase {
    private var networks: [RunningTopology] = []

    override func tearDown() {
        for network in networks { network.down() }
        networks.removeAll()
        super.tearDown()
    }

    private func start(_ file: String) throws -> RunningTopology {
        let network = try RunningTopology(file)
        networks.append(network)
        return network
    }

    func test_scaleTopology_comesUp_andEveryAgentReachesTheService() throws {
        let network = try start("scale.yaml")
        XCTAssertEqual((try network.network()["routers"] as? [String])?.count, 12)
        XCTAssertEqual((try network.network()["links"] as? [[String: Any]])?.count, 66)
        for intercept in (network.status["intercepts"] as? [[String: Any]]) ?? [] {
            guard let address = intercept["address"] as? String, let tunneler = intercept["tunneler"] as? String else { continue }
            let client = try TCPClient(address)
            client.send("GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
            let answer = String(decoding: client.readToEnd().data, as: UTF8.self)
            XCTAssertTrue(answer.contains("caller: \(tunneler)"), answer)
        }
    }

    /// r1 (client edge) reaches r4 (host edge) through r2; applying a file that adds r3 with a
    /// cheaper path makes new circuits take it, and applying it again changes nothing.
    func test_apply_addsARouterThatNewCircuitsUse_andIsIdempotent() throws {
        let mesh = try String(contentsOfFile: Portless.repoRoot + "/topology/mesh.yaml", encoding: .utf8)
        let base = mesh
            .replacingOccurrences(of: "  - name: r3\n    host: mid-2\n", with: "")
            .replacingOccurrences(of: "  - {a: r1, b: r3}\n", with: "")
            .replacingOccurrences(of: "  - {a: r3, b: r4}\n", with: "")
        let scaled = mesh
            .replacingOccurrences(of: "  - {a: r1, b: r2}", with: "  - {a: r1, b: r2, cost: 50}")
        let dir = NSTemporaryDirectory() + "portless-apply-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/topology", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try base.write(toFile: dir + "/base.yaml", atomically: true, encoding: .utf8)
        try scaled.write(toFile: dir + "/scaled.yaml", atomically: true, encoding: .utf8)

        let state = dir + "/state"
        _ = try Portless.cli(["topology", "up", dir + "/base.yaml", "--state", state])
        defer { _ = try? Portless.run("portless", ["topology", "down", "--state", state]) }
        let profile = ["--profile", state + "/profile.json"]
        XCTAssertTrue(try Portless.cli(["topology", "apply", dir + "/base.yaml", "--state", state]).contains("no changes"))

        let applied = try Portless.cli(["topology", "apply", dir + "/scaled.yaml", "--state", state])
        XCTAssertTrue(applied.contains("created router r3"), applied)
        XCTAssertTrue(applied.contains("started router r3"), applied)
        XCTAssertTrue(applied.contains("replaced link r1-r2"), applied)
        XCTAssertTrue(try Portless.cli(["topology", "apply", dir + "/scaled.yaml", "--state", state]).contains("no changes"))

        let address = try Portless.cli(["topology", "status", "--state", state, "--intercept", "hello"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let client = try TCPClient(address)
        client.send("GET /hold HTTP/1.1\r\nHost: demo\r\n\r\n")
        XCTAssertTrue(client.read(until: "holding").contains("holding"))
        let network = try JSONSerialization.jsonObject(with: Data(try Portless.cli(["network"] + profile).utf8)) as? [String: Any]
        let path = ((network?["circuits"] as? [[String: Any]])?.last?["path"] as? [String]) ?? []
        XCTAssertEqual(path, ["r1", "r3", "r4"])
    }
}
