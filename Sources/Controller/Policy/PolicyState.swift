import Shared

/// The current permission snapshot, rebuilt from the store after every change.
final class PolicyState: Sendable {
    private let store: Store
    private let current = Locked(PermissionSnapshot())

    init(store: Store) throws {
        self.store = store
        try rebuild()
    }

    var snapshot: PermissionSnapshot { current.current }

    @discardableResult
    func rebuild() throws -> PermissionSnapshot {
        let snapshot = try store.read { db in
            PermissionSnapshot(
                identities: try db.all(IdentityRow.self),
                routers: try db.all(RouterRow.self),
                services: try db.all(ServiceRow.self),
                configs: try db.all(ConfigRow.self),
                servicePolicies: try db.all(ServicePolicyRow.self),
                edgeRouterPolicies: try db.all(EdgeRouterPolicyRow.self),
                serviceEdgeRouterPolicies: try db.all(ServiceEdgeRouterPolicyRow.self),
                signers: try db.all(ExternalJWTSignerRow.self),
                delegations: try db.all(DelegationPolicyRow.self))
        }
        current.withLock { $0 = snapshot }
        return snapshot
    }
}
