import GRDB
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
        let snapshot = try store.pool.read { db in
            PermissionSnapshot(
                identities: try IdentityRow.fetchAll(db),
                routers: try RouterRow.fetchAll(db),
                services: try ServiceRow.fetchAll(db),
                configs: try ConfigRow.fetchAll(db),
                servicePolicies: try ServicePolicyRow.fetchAll(db),
                edgeRouterPolicies: try EdgeRouterPolicyRow.fetchAll(db),
                serviceEdgeRouterPolicies: try ServiceEdgeRouterPolicyRow.fetchAll(db),
                signers: try ExternalJWTSignerRow.fetchAll(db),
                delegations: try DelegationPolicyRow.fetchAll(db))
        }
        current.withLock { $0 = snapshot }
        return snapshot
    }
}
