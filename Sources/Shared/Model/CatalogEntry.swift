import Foundation

/// One thing an MCP gateway offers its callers, as it reports it to the controller: what kind,
/// the name callers use, and the upstream server and name the policy's patterns match — so the
/// controller can show each identity exactly what its gateway shows it, whatever separator or
/// prefixes the gateway is configured with.
public struct CatalogEntry: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case tool, resource, template, prompt }
    public var kind: Kind
    /// The name callers see: `server__tool`, a prompt's name, a resource's URI or URI template.
    public var name: String
    public var server: String
    /// The upstream's own name (or URI): what `mcp-tools.v1` patterns match.
    public var item: String
    /// Tools: the SHA-256 of `definition`, which is what the pin holds.
    public var hash: String?
    /// Tools: the canonical JSON of the pinned parts (name, description, schemas), so an
    /// operator can see what changed before approving it.
    public var definition: String?

    public init(kind: Kind, name: String, server: String, item: String, hash: String? = nil, definition: String? = nil) {
        self.kind = kind; self.name = name; self.server = server; self.item = item; self.hash = hash; self.definition = definition
    }

    /// Splits a report into parts whose encoding fits a control frame comfortably. A definition
    /// too large for any part is left out (its hash alone is pinned; the operator sees no diff);
    /// an entry whose very name is that large is left out altogether (a tool of it stays unpinned,
    /// so hidden).
    public static func parts(_ entries: [CatalogEntry], budget: Int = 64 * 1024) -> [[CatalogEntry]] {
        var parts: [[CatalogEntry]] = [[]]
        var used = 0
        for var entry in entries {
            // JSON escaping can double a definition's quotes and backslashes: count it twice.
            var size = 96 + entry.name.utf8.count + entry.server.utf8.count + entry.item.utf8.count + 2 * (entry.definition?.utf8.count ?? 0)
            if size > budget {
                entry.definition = nil
                size = 96 + entry.name.utf8.count + entry.server.utf8.count + entry.item.utf8.count
                if size > budget { continue }
            }
            if used + size > budget, !(parts.last ?? []).isEmpty {
                parts.append([])
                used = 0
            }
            parts[parts.count - 1].append(entry)
            used += size
        }
        return parts
    }

    /// The policy kind this entry is matched as (a template as the resources it produces).
    public var policyKind: MCPToolPolicy.Kind {
        switch kind {
        case .tool: return .tool
        case .resource, .template: return .resource
        case .prompt: return .prompt
        }
    }
}

/// `GET /v1/mcp/catalog`: what an MCP gateway hosting a service last reported.
public struct GatewayCatalog: Codable, Sendable, Equatable {
    public var service: String
    public var reporter: String
    public var updatedAt: Date
    public var entries: [CatalogEntry]
    public init(service: String, reporter: String, updatedAt: Date, entries: [CatalogEntry]) {
        self.service = service; self.reporter = reporter; self.updatedAt = updatedAt; self.entries = entries
    }
}
