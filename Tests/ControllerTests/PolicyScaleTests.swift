import XCTest
@testable import Controller
@testable import Shared

/// The indexed permission snapshot decides exactly as the policies read, at a scale where the
/// set of every permitted pair would not fit.
final class PolicyScaleTests: XCTestCase {
    private func naive(_ policies: [ServicePolicyRow], _ identity: IdentityRow, _ type: SessionType, _ service: ServiceRow) -> Bool {
        policies.contains { policy in
            policy.type == type && RoleExpression.matches(policy.identityRoles, name: identity.name, attributes: identity.roles)
                && RoleExpression.matches(policy.serviceRoles, name: service.name, attributes: service.roles)
        }
    }

    func test_decisions_matchTheRolesOfEveryPolicy() {
        var (identities, services, policies) = DecisionBenchmark.network(identities: 5_000, services: 500, policies: 200)
        // And the other shapes of role lists: #all, several expressions, a name and an attribute, nothing matched.
        policies += [ServicePolicyRow(name: "everyone-area-3", type: .dial, identityRoles: ["#all"], serviceRoles: ["#area-3"]),
                     ServicePolicyRow(name: "mixed", type: .dial, identityRoles: ["@agent-17", "#level-4"], serviceRoles: ["@service-9", "#area-50"]),
                     ServicePolicyRow(name: "nobody", type: .bind, identityRoles: ["#no-such-team"], serviceRoles: ["#all"])]
        let snapshot = PermissionSnapshot(identities: identities, routers: [], services: services, configs: [], servicePolicies: policies,
                                          edgeRouterPolicies: [], serviceEdgeRouterPolicies: [])
        var generator = SystemRandomNumberGenerator()
        var granted = 0
        for _ in 0..<20_000 {
            let identity = identities.randomElement(using: &generator)!, service = services.randomElement(using: &generator)!
            for type in [SessionType.dial, .bind] {
                let expected = naive(policies, identity, type, service)
                XCTAssertEqual(snapshot.permits(identity.name, type, service.name), expected, "\(identity.name) \(type) \(service.name)")
                if expected { granted += 1 }
            }
        }
        XCTAssertGreaterThan(granted, 100, "the sample must hold permitted pairs too")
        XCTAssertFalse(snapshot.permits("nobody-known", .dial, "service-3"))
        XCTAssertFalse(snapshot.permits("agent-1", .dial, "no-such-service"))

        let agent = identities[17]
        let expectedGrants = services.filter { naive(policies, agent, .dial, $0) || naive(policies, agent, .bind, $0) }.map(\.name).sorted()
        XCTAssertEqual(snapshot.grants(for: agent.name).map(\.name), expectedGrants)
        let callers = Set(snapshot.callers(of: "service-9").keys)
        XCTAssertEqual(callers, Set(identities.filter { naive(policies, $0, .dial, services[9]) }.map(\.name)))
        XCTAssertTrue(snapshot.hostsAnything("agent-1"))
        XCTAssertFalse(snapshot.hostsAnything("agent-2"), "agent-2 is named by no bind policy")
    }
}
