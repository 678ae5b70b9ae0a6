import Yams
import XCTest
@testable import Shared

final class TopologyFileTests: XCTestCase {
    private func load(_ yaml: String) throws -> TopologyFile {
        let path = NSTemporaryDirectory() + "topology-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try TopologyFile.load(path)
    }

    private func error(_ yaml: String) -> TopologyError? {
        do { _ = try load(yaml); return nil } catch { return error as? TopologyError }
    }

    func test_quickstart_loads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let topology = try TopologyFile.load(root.appendingPathComponent("topology/quickstart.yaml").path)
        XCTAssertEqual(topology.routers.map(\.name), ["edge-1"])
        XCTAssertEqual(topology.tunnelers?.map(\.processName), ["laptop", "enterprise", "support-agent", "analyst-agent"])
        let gateway = topology.tunnelers?.first { $0.processName == "enterprise" }?.hosts?.first { $0.kind == "mcp-gateway" }
        XCTAssertEqual(gateway?.upstreams?.compactMap { $0["name"]?.stringValue }, ["files", "tickets"])
    }

    func test_mcpGatewayHost_mistakesAreLocated() {
        let base = "routers:\n  - name: r1\nidentities:\n  - name: e\nservices:\n  - name: mcp\ntunnelers:\n  - identity: e\n    hosts:\n      - service: mcp\n"
        XCTAssertEqual(error(base + "        kind: mcp-gateway\n")?.key, "tunnelers[0].hosts[0].upstreams")
        XCTAssertEqual(error(base + "        kind: mcp-gateway\n        upstreams:\n          - name: a\n            comand: [x]\n")?.key,
                       "tunnelers[0].hosts[0].upstreams[0].comand")
        XCTAssertEqual(error(base + "        kind: mcp-gateway\n        upstreams:\n          - name: a\n")?.key, "tunnelers[0].hosts[0].upstreams[0]")
        XCTAssertEqual(error(base + "        kind: llm\n        upstreams: []\n")?.key, "tunnelers[0].hosts[0].kind")
    }

    func test_controllersAndDatabase_mistakesAreLocated() throws {
        let routers = "routers:\n  - name: r1\n"
        XCTAssertEqual(error(routers + "database: postgress\n")?.key, "database")
        XCTAssertEqual(error(routers + "controllers:\n  - name: a\n  - name: b\n")?.key, "controllers", "several controllers need PostgreSQL")
        XCTAssertTrue(error(routers + "controllers:\n  - name: a\n  - name: b\n")?.description.contains("database: postgres") ?? false)
        XCTAssertEqual(error(routers + "database: postgres\ncontrollers:\n  - name: a\n  - host: h\n")?.key, "controllers[1]")
        XCTAssertEqual(error(routers + "database: postgres\ncontrollers:\n  - name: a\n  - name: a\n")?.key, "controllers[1].name")
        XCTAssertEqual(error(routers + "database: postgres\ncontroller: {}\ncontrollers:\n  - name: a\n")?.key, "controllers")
        XCTAssertEqual(error(routers + "database: postgres\ncontrollers:\n  - name: a\n    hots: x\n")?.key, "controllers[0].hots")
        let two = try load(routers + "database: postgres\ncontrollers:\n  - name: a\n  - name: b\n")
        XCTAssertEqual(two.allControllers.map(\.name), ["a", "b"])
        XCTAssertTrue(two.usesPostgres)
        XCTAssertEqual(try load(routers).allControllers.map(\.name), ["controller"])
        XCTAssertTrue(try load(routers + "controller:\n  store: postgres\n").usesPostgres)
        XCTAssertEqual(error(routers + "controller:\n  store: mysql\n")?.key, "controller.store")
        XCTAssertEqual(error(routers + "database: sqlite\ncontroller:\n  store: postgres\n")?.key, "controller.store")
    }

    func test_unknownKey_isReportedWithLineAndKey() {
        let found = error("routers:\n  - name: r1\nservices:\n  - name: s\n    rolez: [x]\n")
        XCTAssertEqual(found?.line, 5)
        XCTAssertEqual(found?.key, "services[0].rolez")
        XCTAssertTrue(found?.description.contains("unknown key 'rolez'") ?? false)
    }

    func test_badValue_isReportedWithLineAndKey() {
        let found = error("routers:\n  - name: r1\n    edge: nonsense\n")
        XCTAssertEqual(found?.line, 3)
        XCTAssertEqual(found?.key, "routers[0].edge")
        XCTAssertTrue(found?.message.contains("not an address") ?? false, found?.message ?? "no error")
    }

    func test_missingKey_isReportedAtItsParent() {
        let found = error("routers:\n  - roles: [a]\n")
        XCTAssertEqual(found?.line, 2)
        XCTAssertEqual(found?.key, "routers[0].name")
    }

    func test_undeclaredReference_isReported() {
        let found = error("routers:\n  - name: r1\ntunnelers:\n  - identity: ghost\n")
        XCTAssertEqual(found?.line, 4)
        XCTAssertEqual(found?.key, "tunnelers[0].identity")
    }

    func test_invalidYAML_isReportedWithLine() {
        let found = error("routers: [\n")
        XCTAssertNotNil(found)
        XCTAssertTrue(found?.message.contains("not valid YAML") ?? false)
    }
}

final class ConfigDataTests: XCTestCase {
    /// YAML mappings, lists and scalars all survive as JSON (a mapping once read as `false`).
    func testNestedConfigDataDecodesFromYAML() throws {
        let yaml = """
        rules:
          - identities: ["#support"]
            allow: ["tickets/*", "resource:files/file:///docs/*"]
            limit: 3
            on: true
        """
        let value = try YAMLDecoder().decode(JSONValue.self, from: yaml)
        let policy = try value.decode(MCPToolPolicy.self)
        XCTAssertEqual(policy.rules.first?.identities, ["#support"])
        XCTAssertEqual(policy.rules.first?.allow, ["tickets/*", "resource:files/file:///docs/*"])
        XCTAssertEqual(value["rules"]?.arrayValue?.first?["limit"], .number(3))
        XCTAssertEqual(value["rules"]?.arrayValue?.first?["on"], .bool(true))
    }
}
