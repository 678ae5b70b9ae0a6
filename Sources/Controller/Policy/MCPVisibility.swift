import Shared

/// What an MCP gateway shows each identity, computed as the gateway computes it: from the
/// service's `mcp-tools.v1` rules (merged; one unreadable config shows nothing), the identities
/// that may dial the service, the catalog the gateway reported, and the tool pins (a tool whose
/// definition waits for approval is hidden).
struct MCPVisibility {
    let snapshot: PermissionSnapshot
    let pins: ToolPins

    /// The service's merged tool policy; nil when it has none (no MCP gateway, or one showing nothing).
    func policy(of service: String) -> MCPToolPolicy? {
        let configs = (snapshot.services[service]?.configs ?? []).compactMap { snapshot.configs[$0] }
        return MCPToolPolicy.merged(configs.map { ConfigSpec(name: $0.name, type: $0.type, data: $0.data) }).policy
    }

    /// Everything the gateway offers, as entries; from the pins alone (split at `__`) for a
    /// gateway that has not reported its catalog.
    func entries(of service: String) -> (entries: [CatalogEntry], reported: Bool) {
        if let catalog = pins.catalogs.catalog(of: service) { return (catalog.entries, true) }
        let entries = pins.list(service: service).map { pin -> CatalogEntry in
            guard let split = pin.tool.range(of: "__") else { return CatalogEntry(kind: .tool, name: pin.tool, server: "", item: pin.tool, hash: pin.approvedHash) }
            return CatalogEntry(kind: .tool, name: pin.tool, server: String(pin.tool[..<split.lowerBound]), item: String(pin.tool[split.upperBound...]),
                                hash: pin.approvedHash)
        }
        return (entries, false)
    }

    func visible(service: String, identity: String) -> MCPVisibleItems? {
        guard let policy = policy(of: service) else { return nil }
        let (entries, reported) = entries(of: service)
        let shown = snapshot.callers(of: service)[identity] == nil ? [] : self.shown(entries, service: service, identity: identity, policy: policy)
        func names(_ kind: CatalogEntry.Kind) -> [String] { shown.filter { $0.kind == kind }.map(\.name).sorted() }
        return MCPVisibleItems(service: service, identity: identity, tools: names(.tool), resources: names(.resource), templates: names(.template),
                               prompts: names(.prompt), narrowedByPerson: policy.rules.contains { $0.users != nil },
                               requiresPerson: policy.requirePerson == true, catalogReported: reported)
    }

    /// The identities the gateway shows the entry named `name` (a tool, prompt, resource URI or template).
    func callers(service: String, name: String) -> MCPItemCallers? {
        guard let policy = policy(of: service) else { return nil }
        let matching = entries(of: service).entries.filter { $0.name == name }
        guard !matching.isEmpty else { return nil }
        let identities = snapshot.callers(of: service).keys.filter { identity in
            !shown(matching, service: service, identity: identity, policy: policy).isEmpty
        }.sorted()
        return MCPItemCallers(service: service, name: name, identities: identities, narrowedByPerson: policy.rules.contains { $0.users != nil })
    }

    private func shown(_ entries: [CatalogEntry], service: String, identity: String, policy: MCPToolPolicy) -> [CatalogEntry] {
        let grant = policy.grant(for: identity, attributes: snapshot.allIdentityRoles[identity] ?? [])
        let approved = pins.approved(service: service)
        return entries.filter { entry in
            guard grant.permits(entry.policyKind, server: entry.server, item: entry.item) else { return false }
            return entry.kind != .tool || (entry.hash != nil && approved[entry.name] == entry.hash)
        }
    }
}
