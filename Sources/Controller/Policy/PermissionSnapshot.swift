import Shared

/// Every permission of the network, denormalized so that a dial or bind is decided by set
/// lookups. Rebuilt from the store whenever identities, services, routers or policies change.
struct PermissionSnapshot: Sendable {
    /// Per identity and per service, a bit for each service policy whose identity (or service)
    /// side it matches; dial and bind policies numbered apart. A decision is two hash lookups and
    /// an AND over policies/64 words, whatever the number of identities and services — where a
    /// set of every permitted (identity, service) pair would grow as their product.
    private var identityIndex: [String: Int] = [:]
    private var serviceIndex: [String: Int] = [:]
    private var dialWords = 0
    private var bindWords = 0
    private var identityDial: [UInt64] = []
    private var identityBind: [UInt64] = []
    private var serviceDial: [UInt64] = []
    private var serviceBind: [UInt64] = []
    /// Bind policies that name at least one service.
    private var bindingPolicies: [UInt64] = []
    private var serviceNames: [String] = []
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
        self.identityRoles = Dictionary(identities.map { ($0.name, $0.roles) }, uniquingKeysWith: { $1 })
        self.routers = Set(routers.map(\.name))
        self.services = Dictionary(services.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        self.configs = Dictionary(configs.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        serviceNames = services.map(\.name).sorted()
        for (index, identity) in identities.enumerated() { identityIndex[identity.name] = index }
        for (index, service) in services.enumerated() { serviceIndex[service.name] = index }

        let identityRoles = RoleIndex(identities.map { ($0.name, $0.roles) })
        let serviceRoles = RoleIndex(services.map { ($0.name, $0.roles) })
        let routerRoles = RoleIndex(routers.map { ($0.name, $0.roles) })
        let dialPolicies = servicePolicies.filter { $0.type == .dial }
        let bindPolicies = servicePolicies.filter { $0.type == .bind }
        dialWords = (dialPolicies.count + 63) / 64
        bindWords = (bindPolicies.count + 63) / 64
        identityDial = Array(repeating: 0, count: identities.count * dialWords)
        identityBind = Array(repeating: 0, count: identities.count * bindWords)
        serviceDial = Array(repeating: 0, count: services.count * dialWords)
        serviceBind = Array(repeating: 0, count: services.count * bindWords)
        bindingPolicies = Array(repeating: 0, count: bindWords)
        for (number, policy) in dialPolicies.enumerated() {
            for entity in identityRoles.matching(policy.identityRoles) { Self.set(&identityDial, entity, number, words: dialWords) }
            for entity in serviceRoles.matching(policy.serviceRoles) { Self.set(&serviceDial, entity, number, words: dialWords) }
        }
        for (number, policy) in bindPolicies.enumerated() {
            for entity in identityRoles.matching(policy.identityRoles) { Self.set(&identityBind, entity, number, words: bindWords) }
            let matched = serviceRoles.matching(policy.serviceRoles)
            for entity in matched { Self.set(&serviceBind, entity, number, words: bindWords) }
            if !matched.isEmpty { Self.set(&bindingPolicies, 0, number, words: bindWords) }
        }
        for policy in edgeRouterPolicies {
            let allowed = routerRoles.matching(policy.routerRoles).map { routers[$0].name }
            guard !allowed.isEmpty else { continue }
            for entity in identityRoles.matching(policy.identityRoles) {
                routersForIdentity[identities[entity].name, default: []].formUnion(allowed)
            }
        }
        for policy in serviceEdgeRouterPolicies {
            let allowed = routerRoles.matching(policy.routerRoles).map { routers[$0].name }
            guard !allowed.isEmpty else { continue }
            for entity in serviceRoles.matching(policy.serviceRoles) {
                routersForService[services[entity].name, default: []].formUnion(allowed)
            }
        }
    }

    private static func set(_ bits: inout [UInt64], _ entity: Int, _ policy: Int, words: Int) {
        bits[entity * words + policy >> 6] |= 1 << UInt64(policy & 63)
    }

    /// Whether the two rows of `words` words share a bit.
    private static func overlap(_ a: [UInt64], _ rowA: Int, _ b: [UInt64], _ rowB: Int, words: Int) -> Bool {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                for word in 0..<words where a[rowA * words + word] & b[rowB * words + word] != 0 { return true }
                return false
            }
        }
    }

    /// Whether `identity` may host (Bind) any service.
    func hostsAnything(_ identity: String) -> Bool {
        guard let row = identityIndex[identity] else { return false }
        return Self.overlap(identityBind, row, bindingPolicies, 0, words: bindWords)
    }

    func permits(_ identity: String, _ type: SessionType, _ service: String) -> Bool {
        guard let identityRow = identityIndex[identity], let serviceRow = serviceIndex[service] else { return false }
        switch type {
        case .dial: return Self.overlap(identityDial, identityRow, serviceDial, serviceRow, words: dialWords)
        case .bind: return Self.overlap(identityBind, identityRow, serviceBind, serviceRow, words: bindWords)
        }
    }

    /// Routers this identity may use for this service: edge-router policies ∩ service-edge-router policies.
    func routers(for identity: String, service: String) -> Set<String> {
        (routersForIdentity[identity] ?? []).intersection(routersForService[service] ?? [])
    }

    var allIdentityRoles: [String: [String]] { identityRoles }

    /// Identity → role attributes, for every identity that may dial `service`.
    func callers(of service: String) -> [String: [String]] {
        guard let serviceRow = serviceIndex[service] else { return [:] }
        var callers: [String: [String]] = [:]
        for (identity, row) in identityIndex where Self.overlap(identityDial, row, serviceDial, serviceRow, words: dialWords) {
            callers[identity] = identityRoles[identity] ?? []
        }
        return callers
    }

    func grants(for identity: String) -> [ServiceGrant] {
        serviceNames.compactMap { name in
            let canDial = permits(identity, .dial, name), canBind = permits(identity, .bind, name)
            guard canDial || canBind, let service = services[name] else { return nil }
            let configs = service.configs.compactMap { self.configs[$0] }.map { ConfigSpec(name: $0.name, type: $0.type, data: $0.data) }
            return ServiceGrant(name: name, canDial: canDial, canBind: canBind, configs: configs)
        }
    }
}

/// Entities by name and by attribute, so a role list finds what it matches without testing
/// every entity against it.
private struct RoleIndex {
    private let count: Int
    private var byName: [String: Int] = [:]
    private var byAttribute: [String: [Int]] = [:]

    init(_ entities: [(name: String, roles: [String])]) {
        count = entities.count
        for (index, entity) in entities.enumerated() {
            byName[entity.name] = index
            for role in Set(entity.roles) { byAttribute[role, default: []].append(index) }
        }
    }

    /// The entities `expressions` match (see `RoleExpression`), each once.
    func matching(_ expressions: [String]) -> [Int] {
        if expressions.contains("#all") { return Array(0..<count) }
        var matched = Set<Int>()
        for expression in expressions {
            if expression.hasPrefix("@"), let index = byName[String(expression.dropFirst())] { matched.insert(index) }
            if expression.hasPrefix("#"), let indices = byAttribute[String(expression.dropFirst())] { matched.formUnion(indices) }
        }
        return matched.sorted()
    }
}
