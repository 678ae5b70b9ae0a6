import Foundation
import GatewayKit
import Shared

/// What one identity may see of the catalog, computed once per catalog and policy generation:
/// the visible items of each kind, their names for lookups, and each list's encoded pages.
final class CallerView: @unchecked Sendable {
    let tools: [Int]
    let resources: [Int]
    let templates: [Int]
    let prompts: [Int]
    private let visibleTools: Set<Int>
    private let visiblePrompts: Set<Int>
    private let visibleResources: Set<Int>
    private let visibleTemplates: Set<Int>
    private let catalog: Catalog
    private let lock = NSLock()
    private var pages: [String: Data] = [:]

    private let grant: MCPToolPolicy.Grant

    /// A tool is shown only when the controller holds its definition's pin and the definition is
    /// that one: unconfirmed or changed definitions stay hidden.
    init(catalog: Catalog, grant: MCPToolPolicy.Grant, pins: [String: String]) {
        self.catalog = catalog
        self.grant = grant
        tools = catalog.tools.indices.filter { index in
            let item = catalog.tools[index]
            guard grant.permits(.tool, server: item.server, item: item.upstreamName) else { return false }
            return pins[item.exposedName] == item.definitionHash
        }
        resources = catalog.resources.indices.filter { grant.permits(.resource, server: catalog.resources[$0].server, item: catalog.resources[$0].upstreamName) }
        templates = catalog.templates.indices.filter { grant.permits(.resource, server: catalog.templates[$0].server, item: catalog.templates[$0].upstreamName) }
        prompts = catalog.prompts.indices.filter { grant.permits(.prompt, server: catalog.prompts[$0].server, item: catalog.prompts[$0].upstreamName) }
        visibleTools = Set(tools)
        visiblePrompts = Set(prompts)
        visibleResources = Set(resources)
        visibleTemplates = Set(templates)
    }

    func tool(named name: String) -> CatalogItem? {
        guard let index = catalog.toolsByName[name], visibleTools.contains(index) else { return nil }
        return catalog.tools[index]
    }

    func prompt(named name: String) -> CatalogItem? {
        guard let index = catalog.promptsByName[name], visiblePrompts.contains(index) else { return nil }
        return catalog.prompts[index]
    }

    /// The upstream that serves `uri` (normalized, see `ResourceURI`), if this caller may read
    /// it: a listed resource it may see, or a template it may see that produces `uri` — and then
    /// the policy must allow the concrete URI too, so a deny rule wins over any template.
    func resource(uri: String) -> CatalogItem? {
        if let index = catalog.resourcesByURI[uri] { return visibleResources.contains(index) ? catalog.resources[index] : nil }
        for index in templates where Catalog.uri(uri, matches: catalog.templates[index].upstreamName) {
            let template = catalog.templates[index]
            if grant.permits(.resource, server: template.server, item: uri) { return template }
        }
        return nil
    }

    /// Changes exactly when a list this caller sees changes.
    func fingerprint(_ kind: ListKind) -> Int {
        var hasher = Hasher()
        for item in items(kind) { hasher.combine(item.encoded) }
        return hasher.finalize()
    }

    private func items(_ kind: ListKind) -> [CatalogItem] {
        switch kind {
        case .tools: return tools.map { catalog.tools[$0] }
        case .resources: return resources.map { catalog.resources[$0] }
        case .templates: return templates.map { catalog.templates[$0] }
        case .prompts: return prompts.map { catalog.prompts[$0] }
        }
    }

    /// One page of a list, encoded as the JSON-RPC `result` object. `cursor` is the offset the
    /// previous page's `nextCursor` named.
    func page(_ kind: ListKind, cursor: String?, pageSize: Int, modern: Bool, status: Data) throws -> Data {
        let offset: Int
        if let cursor {
            guard let decoded = Data(base64Encoded: cursor).flatMap({ String(data: $0, encoding: .utf8) }), let value = Int(decoded), value >= 0 else {
                throw RPCError(code: JSONRPC.invalidParams, message: "invalid cursor '\(cursor)': pass back exactly the nextCursor of the previous page")
            }
            offset = value
        } else {
            offset = 0
        }
        let key = "\(kind.rawValue):\(offset):\(pageSize):\(modern)"
        if let cached = lock.withLock({ pages[key] }) { return cached }
        let all = items(kind)
        let slice = all.dropFirst(offset).prefix(pageSize)
        var data = Data("{\"\(kind.resultKey)\":[".utf8)
        for (position, item) in slice.enumerated() {
            if position > 0 { data.append(UInt8(ascii: ",")) }
            data.append(item.encoded)
        }
        data.append(UInt8(ascii: "]"))
        if offset + slice.count < all.count {
            let next = Data(String(offset + slice.count).utf8).base64EncodedString()
            data.append(contentsOf: Array(",\"nextCursor\":\"\(next)\"".utf8))
        }
        data.append(contentsOf: Array(",\"_meta\":{\"portless/upstreams\":".utf8))
        data.append(status)
        data.append(UInt8(ascii: "}"))
        if modern { data.append(contentsOf: Array(",\"ttlMs\":0,\"cacheScope\":\"private\",\"resultType\":\"complete\"".utf8)) }
        data.append(UInt8(ascii: "}"))
        lock.withLock { pages[key] = data }
        return data
    }
}

enum ListKind: String, CaseIterable, Sendable {
    case tools, resources, templates, prompts

    var resultKey: String { self == .templates ? "resourceTemplates" : rawValue }

    var changedNotification: String {
        switch self {
        case .tools: return "notifications/tools/list_changed"
        case .resources, .templates: return "notifications/resources/list_changed"
        case .prompts: return "notifications/prompts/list_changed"
        }
    }
}
