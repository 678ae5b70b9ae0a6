import Shared

/// Every permission of the network, denormalized so that a dial or bind is decided by set
/// lookups. Rebuilt from the store whenever identities, services, routers or policies change.
struct PermissionSnapshot: Sendable {
    private(set) var dial: [String: Set<String>] = [:]
    private(set) var bind: [String: Set<String>] = [:]
    private(set) var routersForIdentity: [String: Set<String>] = [:]
    private(set) var routersForService: [String: Set<String>] = [:]
    private(set) var services: [String: ServiceRow] = [:]
    private(set) var configs: [String: ConfigRow] = [:]
    private(set) var identities: Set<String> = []
    private(set) var identityRoles: [String: [String]] = [:]
    private(set) var routers: Set<String> = []
    /// Identity providers whose tokens name people, and which agents may act for whom.
    private(set) var signers: [ExternalJWTSignerSpec] = []
    private(set) var delegations: [DelegationPolicySpec] = []

    init() {}

    init(identities: [IdentityRow], routers: [RouterRow], services: [ServiceRow], configs: [ConfigRow],
         servicePolicies: [ServicePolicyRow], edgeRouterPolicies: [EdgeRouterPolicyRow],
         serviceEdgeRouterPolicies: [ServiceEdgeRouterPolicyRow],
         signers: [ExternalJWTSignerRow] = [], delegations: [DelegationPolicyRow] = []) {
        self.signers = signers.map(\.spec).sorted { $0.name < $1.name }
        self.delegations = delegations.map(\.spec).sorted { $0.name < $1.name }
        self.identities = Set(identities.map(\.name))
        self.identityRoles = Dictionary(uniqueKeysWithValues: identities.map { ($0.name, $0.roles) })
        self.routers = Set(routers.map(\.name))
        self.services = Dictionary(uniqueKeysWithValues: services.map { ($0.name, $0) })
        self.configs = Dictionary(uniqueKeysWithValues: configs.map { ($0.name, $0) })
        for policy in servicePolicies {
            let who = identities.filter { RoleExpression.matches(policy.identityRoles, name: $0.name, attributes: $0.roles) }
            let what = services.filter { RoleExpression.matches(policy.serviceRoles, name: $0.name, attributes: $0.roles) }
            for identity in who {
                for service in what {
                    switch policy.type {
                    case .dial: dial[identity.name, default: []].insert(service.name)
                    case .bind: bind[identity.name, default: []].insert(service.name)
                    }
                }
            }
        }
        for policy in edgeRouterPolicies {
            let allowed = routers.filter { RoleExpression.matches(policy.routerRoles, name: $0.name, attributes: $0.roles) }.map(\.name)
            for identity in identities where RoleExpression.matches(policy.identityRoles, name: identity.name, attributes: identity.roles) {
                routersForIdentity[identity.name, default: []].formUnion(allowed)
            }
        }
        for policy in serviceEdgeRouterPolicies {
            let allowed = routers.filter { RoleExpression.matches(policy.routerRoles, name: $0.name, attributes: $0.roles) }.map(\.name)
            for service in services where RoleExpression.matches(policy.serviceRoles, name: service.name, attributes: service.roles) {
                routersForService[service.name, default: []].formUnion(allowed)
            }
        }
    }

    /// Whether `identity` may host (Bind) any service.
    func hostsAnything(_ identity: String) -> Bool { !(bind[identity]?.isEmpty ?? true) }

    func permits(_ identity: String, _ type: SessionType, _ service: String) -> Bool {
        switch type {
        case .dial: return dial[identity]?.contains(service) ?? false
        case .bind: return bind[identity]?.contains(service) ?? false
        }
    }

    /// Routers this identity may use for this service: edge-router policies ∩ service-edge-router policies.
    func routers(for identity: String, service: String) -> Set<String> {
        (routersForIdentity[identity] ?? []).intersection(routersForService[service] ?? [])
    }

    var allIdentityRoles: [String: [String]] { identityRoles }

    /// Identity → role attributes, for every identity that may dial `service`.
    func callers(of service: String) -> [String: [String]] {
        var callers: [String: [String]] = [:]
        for (identity, services) in dial where services.contains(service) { callers[identity] = identityRoles[identity] ?? [] }
        return callers
    }

    func grants(for identity: String) -> [ServiceGrant] {
        let names = (dial[identity] ?? []).union(bind[identity] ?? [])
        return names.sorted().compactMap { name in
            guard let service = services[name] else { return nil }
            let configs = service.configs.compactMap { self.configs[$0] }.map { ConfigSpec(name: $0.name, type: $0.type, data: $0.data) }
            return ServiceGrant(name: name, canDial: permits(identity, .dial, name), canBind: permits(identity, .bind, name), configs: configs)
        }
    }
}
