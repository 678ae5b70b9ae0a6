import Foundation
import Shared

/// Brings the controller's resources to what a topology file declares: creates what is missing,
/// updates what differs, deletes what the file no longer has. Applying the same file twice
/// changes nothing the second time.
struct ResourceReconciler {
    let topology: TopologyFile
    let client: ManagementClient
    /// Where an app of the topology listens (`host:port`), for resources that point at one.
    var appAddress: (String) -> String? = { _ in nil }

    /// What was done, one line per change, and the enrollment tokens of what was created.
    struct Outcome {
        var changes: [String] = []
        var identityTokens: [String: String] = [:]
        var routerTokens: [String: String] = [:]
    }

    func reconcile() async throws -> Outcome {
        var outcome = Outcome()
        let desired = try DesiredResources(topology, appAddress: appAddress)

        // Deletions first, dependents before what they depend on.
        try await prune("delegation-policies", desired.delegationPolicies.map(\.name), as: DelegationPolicySpec.self, \.name, &outcome)
        try await prune("external-jwt-signers", desired.signers.map(\.name), as: ExternalJWTSignerSpec.self, \.name, &outcome)
        try await prune("service-policies", desired.servicePolicies.map(\.name), as: ServicePolicySpec.self, \.name, &outcome)
        try await prune("edge-router-policies", desired.edgeRouterPolicies.map(\.name), as: EdgeRouterPolicySpec.self, \.name, &outcome)
        try await prune("service-edge-router-policies", desired.serviceEdgeRouterPolicies.map(\.name), as: ServiceEdgeRouterPolicySpec.self, \.name, &outcome)
        try await prune("links", desired.links.map(\.name), as: LinkSpec.self, \.name, &outcome)
        try await prune("routers", desired.routers.map(\.name), as: RouterRecord.self, \.name, &outcome)
        try await prune("identities", desired.identities.map(\.name), as: IdentityRecord.self, \.name, &outcome)
        try await prune("services", desired.services.map(\.name), as: ServiceSpec.self, \.name, &outcome)
        try await prune("configs", desired.configs.map(\.name), as: ConfigSpec.self, \.name, &outcome)

        try await converge("configs", desired.configs, \.name, replaceInPlace: true, &outcome)
        try await converge("services", desired.services, \.name, &outcome)
        let identities = try await client.get("/v1/identities", as: [IdentityRecord].self)
        for identity in desired.identities {
            if let current = identities.first(where: { $0.name == identity.name }) {
                if current.roles != identity.roles {
                    _ = try await client.put("/v1/identities/\(identity.name)", identity, as: IdentityRecord.self)
                    outcome.changes.append("updated identity \(identity.name)")
                }
            } else {
                let record = try await client.post("/v1/identities", identity, as: IdentityRecord.self)
                outcome.identityTokens[identity.name] = record.enrollmentToken
                outcome.changes.append("created identity \(identity.name)")
            }
        }
        let routers = try await client.get("/v1/routers", as: [RouterRecord].self)
        for router in desired.routers {
            if let current = routers.first(where: { $0.name == router.name }) {
                if current.roles != router.roles {
                    _ = try await client.put("/v1/routers/\(router.name)", router, as: RouterRecord.self)
                    outcome.changes.append("updated router \(router.name)")
                }
            } else {
                let record = try await client.post("/v1/routers", router, as: RouterRecord.self)
                outcome.routerTokens[router.name] = record.enrollmentToken
                outcome.changes.append("created router \(router.name)")
            }
        }
        try await converge("links", desired.links, \.name, &outcome)
        try await converge("service-policies", desired.servicePolicies, \.name, &outcome)
        try await converge("edge-router-policies", desired.edgeRouterPolicies, \.name, &outcome)
        try await converge("service-edge-router-policies", desired.serviceEdgeRouterPolicies, \.name, &outcome)
        try await converge("external-jwt-signers", desired.signers, \.name, &outcome)
        try await converge("delegation-policies", desired.delegationPolicies, \.name, &outcome)
        return outcome
    }

    private func prune<T: Decodable>(_ resource: String, _ keep: [String], as: T.Type, _ name: KeyPath<T, String>,
                                     _ outcome: inout Outcome) async throws {
        let keep = Set(keep)
        for item in try await client.get("/v1/\(resource)", as: [T].self) where !keep.contains(item[keyPath: name]) {
            try await client.delete("/v1/\(resource)/\(item[keyPath: name])")
            outcome.changes.append("deleted \(resource.singular) \(item[keyPath: name])")
        }
    }

    /// Creates missing items; replaces items whose definition differs.
    /// `replaceInPlace`: update with PUT, so there is no moment without the item (a tool policy
    /// briefly missing would hide every tool).
    private func converge<T: Codable & Equatable>(_ resource: String, _ desired: [T], _ name: KeyPath<T, String>,
                                                  replaceInPlace: Bool = false, _ outcome: inout Outcome) async throws {
        let current = try await client.get("/v1/\(resource)", as: [T].self)
        for item in desired {
            let key = item[keyPath: name]
            if let existing = current.first(where: { $0[keyPath: name] == key }) {
                guard existing != item else { continue }
                if replaceInPlace {
                    _ = try await client.put("/v1/\(resource)/\(key)", item, as: T.self)
                    outcome.changes.append("updated \(resource.singular) \(key)")
                    continue
                }
                try await client.delete("/v1/\(resource)/\(key)")
                _ = try await client.post("/v1/\(resource)", item, as: T.self)
                outcome.changes.append("replaced \(resource.singular) \(key)")
            } else {
                _ = try await client.post("/v1/\(resource)", item, as: T.self)
                outcome.changes.append("created \(resource.singular) \(key)")
            }
        }
    }
}

/// The management-API resources a topology file declares, with the defaults `up` adds.
struct DesiredResources {
    let configs: [ConfigSpec]
    let services: [ServiceSpec]
    let identities: [IdentitySpec]
    let routers: [RouterSpec]
    let links: [LinkSpec]
    let servicePolicies: [ServicePolicySpec]
    let edgeRouterPolicies: [EdgeRouterPolicySpec]
    let serviceEdgeRouterPolicies: [ServiceEdgeRouterPolicySpec]
    let signers: [ExternalJWTSignerSpec]
    let delegationPolicies: [DelegationPolicySpec]

    init(_ topology: TopologyFile, appAddress: (String) -> String? = { _ in nil }) throws {
        signers = try (topology.external_jwt_signers ?? []).map { signer in
            var url = signer.jwks_url
            if let app = signer.app {
                guard let address = appAddress(app) else {
                    throw ManagementError.unreadable(path: "external_jwt_signers", detail: "signer '\(signer.name)' takes its keys from app '\(app)', which runs only under 'topology up'; give jwks_url")
                }
                url = "http://\(address)\(signer.path ?? "/")"
            }
            return ExternalJWTSignerSpec(name: signer.name, issuer: signer.issuer, audience: signer.audience, jwksURL: url, keys: signer.keys,
                                         userClaim: signer.user_claim, attributeClaims: signer.attribute_claims)
        }
        delegationPolicies = (topology.delegation_policies ?? []).map { DelegationPolicySpec(name: $0.name, agentRoles: $0.agents, userRoles: $0.users) }
        configs = (topology.configs ?? []).map { ConfigSpec(name: $0.name, type: $0.type, data: $0.data) }
        services = (topology.services ?? []).map { ServiceSpec(name: $0.name, roles: $0.roles ?? [], configs: $0.configs ?? []) }
        identities = (topology.identities ?? []).map { IdentitySpec(name: $0.name, roles: $0.roles ?? []) }
        routers = topology.routers.map { RouterSpec(name: $0.name, roles: $0.roles ?? []) }
        links = (topology.links ?? []).map { LinkSpec(name: $0.resolvedName, a: $0.a, b: $0.b, cost: $0.cost ?? 0) }
        servicePolicies = (topology.service_policies ?? []).map {
            ServicePolicySpec(name: $0.name, type: $0.type, identityRoles: $0.identities, serviceRoles: $0.services)
        }
        // Without explicit router policies, every identity may use every router for every service.
        edgeRouterPolicies = topology.edge_router_policies.map { $0.map { EdgeRouterPolicySpec(name: $0.name, identityRoles: $0.identities, routerRoles: $0.routers) } }
            ?? [EdgeRouterPolicySpec(name: "all-identities-all-routers", identityRoles: ["#all"], routerRoles: ["#all"])]
        serviceEdgeRouterPolicies = topology.service_edge_router_policies.map { $0.map { ServiceEdgeRouterPolicySpec(name: $0.name, serviceRoles: $0.services, routerRoles: $0.routers) } }
            ?? [ServiceEdgeRouterPolicySpec(name: "all-services-all-routers", serviceRoles: ["#all"], routerRoles: ["#all"])]
    }
}

private extension String {
    /// "service-policies" → "service-policy", "identities" → "identity".
    var singular: String {
        if hasSuffix("ies") { return String(dropLast(3)) + "y" }
        if hasSuffix("s") { return String(dropLast()) }
        return self
    }
}
