import Foundation
import GatewayKit
import Logging
@testable import MCPGateway
import Shared
import XCTest

/// A controller line that refuses pin reports until it is "reachable", and pins what it is told.
final class FlakyControl: GatewayControl, @unchecked Sendable {
    // safe: all state behind `lock`.
    private let lock = NSLock()
    private var reachable = false
    private var pins: [String: String] = [:]
    private(set) var refusedReports = 0

    func becomeReachable() { lock.withLock { reachable = true } }
    var refused: Int { lock.withLock { refusedReports } }

    func fetchView(known: String?) async throws -> GatewayView? {
        let pins = lock.withLock { self.pins }
        let policy = ConfigSpec(name: "all", type: MCPToolPolicy.configType,
                                data: .object(["rules": .array([.object(["identities": .array([.string("#agents")]), "allow": .array([.string("*/*")])])])]))
        let view = GatewayView(generation: "g\(pins.count)", configs: [policy], callers: ["agent": ["agents"]], pins: pins)
        return view.generation == known ? nil : view
    }

    func reportCatalog(_ entries: [CatalogEntry], report: String, complete: Bool) async throws {
        try lock.withLock {
            guard reachable else {
                refusedReports += 1
                throw ControlError.refused("the controller is unreachable")
            }
            for entry in entries where entry.kind == .tool { pins[entry.name] = pins[entry.name] ?? entry.hash }
        }
    }

    func audit(_ events: [GatewayAuditEvent]) async throws {}
}

final class PinningTests: XCTestCase {
    private var python: String {
        ProcessInfo.processInfo.environment["PORTLESS_PYTHON"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/.build/venv/bin/python"
    }

    private var edgeServer: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
            + "/IntegrationTests/Support/mcp/edge_stdio_server.py"
    }

    func test_toolsListedBeforeTheControllerAnswers_stayHiddenUntilTheirPinIsConfirmed() async throws {
        let control = FlakyControl()
        let config = MCPGatewayConfig(upstreams: [UpstreamConfig(name: "edge", command: [python, edgeServer])])
        let gateway = MCPGateway(service: "edges", config: config, control: control, logger: Logger(label: "test"))
        await gateway.start()
        defer { Task { await gateway.stop() } }
        let caller = Caller(identity: "agent", circuit: 1)

        try await eventually("the upstream's tools are listed") { await gateway.catalog.tools.count == 7 }
        try await eventually("a report was refused") { control.refused > 0 }
        let hidden = await gateway.callerView(caller).tools
        XCTAssertEqual(hidden, [], "a definition the controller has not pinned is never shown")
        let ready = await gateway.isReady
        XCTAssertFalse(ready, "not ready while pins are unconfirmed")

        control.becomeReachable()
        try await eventually("the tools appear once pinned") { await gateway.callerView(caller).tools.count == 7 }
        try await eventually("ready") { await gateway.isReady }
        let reply = await gateway.handle(method: "tools/list", params: nil, downstream: .plain(caller))
        guard case .encoded(let data) = reply else { return XCTFail("\(reply)") }
        XCTAssertEqual(try JSONValue.parse(data)["tools"]?.arrayValue?.count, 7)
    }

    private func eventually(_ what: String, within seconds: Double = 20, _ condition: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTFail("timed out waiting for \(what)")
        throw CancellationError()
    }
}

final class SessionTableTests: XCTestCase {
    func test_aCallerHoldsAtMostItsLimit_theLeastRecentlyUsedIdleSessionMakesRoom() throws {
        var table = SessionTable()
        let caller = Caller(identity: "agent", circuit: nil)
        var ids: [String] = []
        for _ in 0..<SessionTable.maxPerCaller { ids.append(try table.open(caller: caller, version: "2025-11-25", capabilities: .object([:])).get().id) }
        for id in ids.dropFirst() { _ = table.touch(id) }
        let next = try table.open(caller: caller, version: "2025-11-25", capabilities: .object([:])).get()
        XCTAssertNil(table[ids[0]], "the least recently used session went")
        XCTAssertNotNil(table[next.id])
        XCTAssertEqual(table.all.filter { $0.caller == caller }.count, SessionTable.maxPerCaller)
        let other = Caller(identity: "someone-else", circuit: nil)
        XCTAssertNoThrow(try table.open(caller: other, version: "2025-11-25", capabilities: .object([:])).get(), "limits are per caller")
    }

    func test_whenEverySessionHoldsAStream_aNewOneIsRefusedWithAClearError() throws {
        var table = SessionTable()
        let caller = Caller(identity: "agent", circuit: nil)
        for _ in 0..<SessionTable.maxPerCaller {
            let id = try table.open(caller: caller, version: "2025-11-25", capabilities: .object([:])).get().id
            _ = table.attach(MessageStream.make().1, to: id)
        }
        guard case .failure(let error) = table.open(caller: caller, version: "2025-11-25", capabilities: .object([:])) else { return XCTFail("opened") }
        XCTAssertTrue(error.message.contains("already holds \(SessionTable.maxPerCaller) sessions"), error.message)
    }

    func test_idleSessionsExpire_sessionsWithAStreamLastLonger() throws {
        var table = SessionTable()
        let caller = Caller(identity: "agent", circuit: nil)
        let idle = try table.open(caller: caller, version: "2025-11-25", capabilities: .object([:])).get().id
        let streaming = try table.open(caller: caller, version: "2025-11-25", capabilities: .object([:])).get().id
        _ = table.attach(MessageStream.make().1, to: streaming)
        let expired = table.expire(now: .now + SessionTable.idleLimit + .seconds(1))
        XCTAssertEqual(expired.map(\.id), [idle])
        XCTAssertEqual(table.expire(now: .now + SessionTable.idleLimitWithStream + .seconds(1)).map(\.id), [streaming], "not forever")
    }

    func test_aMessageGoesToOneStreamOnly_theNewest() async throws {
        var table = SessionTable()
        let id = try table.open(caller: Caller(identity: "a", circuit: nil), version: "2025-11-25", capabilities: .object([:])).get().id
        let (first, firstStream) = MessageStream.make()
        let (second, secondStream) = MessageStream.make()
        _ = table.attach(firstStream, to: id)
        _ = table.attach(secondStream, to: id)
        table.deliver(Data("m".utf8), to: id)
        firstStream.continuation.finish()
        secondStream.continuation.finish()
        var counts = [0, 0]
        for await _ in first { counts[0] += 1 }
        for await _ in second { counts[1] += 1 }
        XCTAssertEqual(counts, [0, 1])
    }
}
