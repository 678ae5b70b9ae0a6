import XCTest
@testable import Controller
@testable import Shared

final class PolicyTests: XCTestCase {
    private func snapshot(_ policies: [ServicePolicyRow]) -> PermissionSnapshot {
        PermissionSnapshot(
            identities: [IdentityRow(name: "alice", roles: ["agents"], enrolled: true, createdAt: Date()),
                         IdentityRow(name: "bob", roles: ["humans"], enrolled: true, createdAt: Date())],
            routers: [RouterRow(name: "r1", roles: [], enrolled: true, createdAt: Date())],
            services: [ServiceRow(name: "sql", roles: ["data"], configs: []), ServiceRow(name: "tickets", roles: ["ops"], configs: [])],
            configs: [], servicePolicies: policies,
            edgeRouterPolicies: [EdgeRouterPolicyRow(name: "e", identityRoles: ["#all"], routerRoles: ["#all"])],
            serviceEdgeRouterPolicies: [ServiceEdgeRouterPolicyRow(name: "s", serviceRoles: ["@sql"], routerRoles: ["@r1"])])
    }

    func test_attributeMatch_grantsOnlyMatchingPairs() {
        let s = snapshot([ServicePolicyRow(name: "p", type: .dial, identityRoles: ["#agents"], serviceRoles: ["#data"])])
        XCTAssertTrue(s.permits("alice", .dial, "sql"))
        XCTAssertFalse(s.permits("alice", .dial, "tickets"))
        XCTAssertFalse(s.permits("bob", .dial, "sql"))
        XCTAssertFalse(s.permits("alice", .bind, "sql"), "a Dial policy must not grant Bind")
    }

    func test_nameMatch_grantsThatEntityOnly() {
        let s = snapshot([ServicePolicyRow(name: "p", type: .bind, identityRoles: ["@bob"], serviceRoles: ["@tickets"])])
        XCTAssertTrue(s.permits("bob", .bind, "tickets"))
        XCTAssertFalse(s.permits("alice", .bind, "tickets"))
    }

    func test_allMatch_grantsEveryone() {
        let s = snapshot([ServicePolicyRow(name: "p", type: .dial, identityRoles: ["#all"], serviceRoles: ["#all"])])
        for identity in ["alice", "bob"] { for service in ["sql", "tickets"] { XCTAssertTrue(s.permits(identity, .dial, service)) } }
    }

    func test_routers_areTheIntersectionOfBothRouterPolicies() {
        let s = snapshot([])
        XCTAssertEqual(s.routers(for: "alice", service: "sql"), ["r1"])
        XCTAssertEqual(s.routers(for: "alice", service: "tickets"), [])
    }

    func test_invalidRoleExpression_isReported() {
        XCTAssertNotNil(RoleExpression.problem(in: ["agents"]))
        XCTAssertNil(RoleExpression.problem(in: ["#agents", "@bob", "#all"]))
    }
}
