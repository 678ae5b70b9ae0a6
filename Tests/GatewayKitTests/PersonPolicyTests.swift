import XCTest
@testable import Shared

/// What an agent acting for a person may use: the intersection of the two policies, in the MCP
/// tool policy and in the LLM model policy.
final class PersonPolicyTests: XCTestCase {
    private let alice = Person(name: "alice", issuer: "i", signer: "s", attributes: ["finance"])
    private let bob = Person(name: "bob", issuer: "i", signer: "s", attributes: ["support"])

    func test_toolPolicy_isTheIntersectionOfAgentAndPerson() {
        let policy = MCPToolPolicy(rules: [
            .init(identities: ["#agents"], allow: ["crm/*"], deny: ["crm/drop_table"]),
            .init(users: ["#finance"], allow: ["crm/*"]),
            .init(users: ["#support"], allow: ["crm/read_*"]),
        ])
        XCTAssertNil(policy.problem())
        let agentAlone = policy.grant(for: "a", attributes: ["agents"])
        XCTAssertTrue(agentAlone.permits(.tool, server: "crm", item: "write_ticket"))
        let forAlice = policy.grant(for: "a", attributes: ["agents"], person: alice)
        XCTAssertTrue(forAlice.permits(.tool, server: "crm", item: "write_ticket"))
        XCTAssertFalse(forAlice.permits(.tool, server: "crm", item: "drop_table"), "the agent's deny holds for any person")
        let forBob = policy.grant(for: "a", attributes: ["agents"], person: bob)
        XCTAssertTrue(forBob.permits(.tool, server: "crm", item: "read_ticket"))
        XCTAssertFalse(forBob.permits(.tool, server: "crm", item: "write_ticket"), "the person's limit holds for any agent")
        let stranger = Person(name: "carol", issuer: "i", signer: "s", attributes: [])
        XCTAssertFalse(policy.grant(for: "a", attributes: ["agents"], person: stranger).permits(.tool, server: "crm", item: "read_ticket"),
                       "a person no user rule names may use nothing")
        XCTAssertNotNil(MCPToolPolicy(rules: [.init(identities: ["#a"], users: ["#b"], allow: ["x/y"])]).problem(), "a rule names agents or people, not both")
    }

    func test_withoutUserRules_peopleAreLimitedOnlyByTheirAgent() {
        let policy = MCPToolPolicy(rules: [.init(identities: ["#agents"], allow: ["crm/*"])])
        XCTAssertTrue(policy.grant(for: "a", attributes: ["agents"], person: alice).permits(.tool, server: "crm", item: "anything"))
    }

    func test_modelPolicy_isTheIntersection_andADeniedModelIsNeverRouted() {
        let policy = LLMPolicy(models: [
            .init(identities: ["#agents"], allow: ["*"], deny: ["gpt-huge"]),
            .init(users: ["#finance"], allow: ["gpt-big", "gpt-mini", "auto"]),
            .init(users: ["#support"], allow: ["gpt-mini"]),
        ])
        XCTAssertNil(policy.problem())
        let forAlice = policy.modelAccess(identity: "a", attributes: ["agents"], person: alice)
        XCTAssertTrue(forAlice.permits("gpt-big"))
        XCTAssertFalse(forAlice.permits("gpt-huge"))
        XCTAssertTrue(forAlice.denies("gpt-huge"), "an alias must not route to a model the agent is denied")
        let forBob = policy.modelAccess(identity: "a", attributes: ["agents"], person: bob)
        XCTAssertFalse(forBob.permits("gpt-big"))
        XCTAssertTrue(forBob.permits("gpt-mini"))
        XCTAssertTrue(LLMPolicy().modelAccess(identity: "x", attributes: [], person: bob).permits("anything"), "no models policy: all open")
        XCTAssertFalse(policy.modelAccess(identity: "other", attributes: [], person: nil).permits("gpt-mini"), "an agent no rule names gets nothing")
    }
}
