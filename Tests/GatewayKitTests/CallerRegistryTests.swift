import GatewayKit
import NIOCore
import NIOEmbedded
import Shared
import XCTest

final class CallerRegistryTests: XCTestCase {
    /// A keep-alive connection carries any number of requests: each one's departure callback is
    /// dropped when it ends, so a long connection does not accumulate them.
    func test_finishedRequests_leaveNoCallbacksBehind_andALeavingCallerCancelsTheRunningOne() async throws {
        let registry = CallerRegistry()
        let channel = EmbeddedChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        registry.set(Caller(identity: "agent", circuit: 1), for: channel)
        for index in 0..<1_000 {
            let answer = await registry.abandoningIfGone(channel) { index }
            XCTAssertEqual(answer, index)
        }
        XCTAssertEqual(registry.waiting(on: channel), 0, "finished requests leave no callback behind")

        let started = expectation(description: "the request runs")
        let running = Task {
            await registry.abandoningIfGone(channel) { () -> Bool in
                started.fulfill()
                try? await Task.sleep(for: .seconds(30))
                return Task.isCancelled
            }
        }
        await fulfillment(of: [started], timeout: 5)
        XCTAssertEqual(registry.waiting(on: channel), 1)
        registry.departed(channel)  // what CallerDepartureHandler does when the connection's input ends
        let cancelled = await running.value
        _ = try? await channel.close()
        XCTAssertTrue(cancelled, "the caller left: its request was cancelled")
    }
}
