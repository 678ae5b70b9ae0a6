import XCTest
@testable import Controller

final class PathFinderTests: XCTestCase {
    /// r1 → {r2, r3} → r4, the diamond of topology/mesh.yaml.
    private func diamond(r2: Double, r3: Double) -> LinkGraph {
        var graph = LinkGraph()
        graph.setLink("r1", "r2", weight: r2)
        graph.setLink("r2", "r4", weight: r2)
        graph.setLink("r1", "r3", weight: r3)
        graph.setLink("r3", "r4", weight: r3)
        return graph
    }

    func test_cheapestPath_followsLowerLatency() {
        XCTAssertEqual(diamond(r2: 1, r3: 5).path(from: "r1", to: "r4")?.routers, ["r1", "r2", "r4"])
        XCTAssertEqual(diamond(r2: 5, r3: 1).path(from: "r1", to: "r4")?.routers, ["r1", "r3", "r4"])
    }

    func test_downLink_isRoutedAround() {
        var graph = diamond(r2: 1, r3: 5)
        graph.setLink("r2", "r4", weight: nil)
        XCTAssertEqual(graph.path(from: "r1", to: "r4")?.routers, ["r1", "r3", "r4"])
        graph.removeRouter("r3")
        XCTAssertNil(graph.path(from: "r1", to: "r4"))
    }

    func test_sameRouter_isAOneRouterPath() {
        XCTAssertEqual(LinkGraph().path(from: "r1", to: "r1")?.routers, ["r1"])
    }

    func test_fewerHops_winWhenLatencyTies() {
        var graph = diamond(r2: 0, r3: 0)
        graph.setLink("r1", "r4", weight: 0)
        XCTAssertEqual(graph.path(from: "r1", to: "r4")?.routers, ["r1", "r4"])
    }
}
