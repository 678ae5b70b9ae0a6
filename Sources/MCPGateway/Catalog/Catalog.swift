import Crypto
import Foundation
import GatewayKit
import Shared

/// One tool, resource, resource template or prompt as the gateway exposes it.
struct CatalogItem: Sendable {
    let kind: MCPToolPolicy.Kind
    /// The upstream that serves it.
    let server: String
    /// The name callers use: `server__name` for tools and prompts; a resource's URI.
    let exposedName: String
    /// The name (or URI, or URI template) the upstream knows it by.
    let upstreamName: String
    /// The definition sent to callers, pre-encoded once.
    let encoded: Data
    /// Tools only: SHA-256 over name, description and schemas, for pinning.
    let definitionHash: String?
    /// Tools only: the canonical JSON that hash is over, for the operator who approves a change.
    let pinnedDefinition: String?
    let isTemplate: Bool

    /// How the gateway reports it to the controller.
    var entry: CatalogEntry {
        let kind: CatalogEntry.Kind
        switch self.kind {
        case .tool: kind = .tool
        case .resource: kind = isTemplate ? .template : .resource
        case .prompt: kind = .prompt
        }
        return CatalogEntry(kind: kind, name: exposedName, server: server, item: upstreamName, hash: definitionHash, definition: pinnedDefinition)
    }
}

/// Everything every upstream offers, under the names callers see. Rebuilt whenever an upstream
/// comes, goes or changes its lists.
struct Catalog: Sendable {
    private(set) var tools: [CatalogItem] = []
    private(set) var resources: [CatalogItem] = []
    private(set) var templates: [CatalogItem] = []
    private(set) var prompts: [CatalogItem] = []
    private(set) var toolsByName: [String: Int] = [:]
    private(set) var promptsByName: [String: Int] = [:]
    private(set) var resourcesByURI: [String: Int] = [:]
    /// Upstream → "up (version)" or "down: why", for callers and operators.
    private(set) var status: [String: String] = [:]
    /// Names two upstreams both claim; the first upstream (config order) keeps them.
    private(set) var collisions: [String] = []

    init() {}

    init(upstreams: [(config: UpstreamConfig, status: Upstream.Status, offer: Upstream.Offer)], separator: String) {
        for (config, status, offer) in upstreams {
            self.status[config.name] = status.text
            let prefix = config.effectivePrefix + separator
            for tool in offer.tools {
                guard let name = tool["name"]?.stringValue else { continue }
                let pinned = Self.pinnedDefinition(tool)
                Self.add(.tool, server: config.name, exposed: prefix + name, upstream: name, definition: tool.setting("name", .string(prefix + name)),
                    pinned: pinned, into: &tools, index: &toolsByName, collisions: &collisions)
            }
            for prompt in offer.prompts {
                guard let name = prompt["name"]?.stringValue else { continue }
                Self.add(.prompt, server: config.name, exposed: prefix + name, upstream: name, definition: prompt.setting("name", .string(prefix + name)),
                    pinned: nil, into: &prompts, index: &promptsByName, collisions: &collisions)
            }
            for resource in offer.resources {
                guard let uri = resource["uri"]?.stringValue else { continue }
                let named = resource["name"]?.stringValue.map { resource.setting("name", .string(prefix + $0)) } ?? resource
                Self.add(.resource, server: config.name, exposed: uri, upstream: uri, definition: named, pinned: nil, into: &resources, index: &resourcesByURI, collisions: &collisions)
            }
            for template in offer.templates {
                guard let uriTemplate = template["uriTemplate"]?.stringValue else { continue }
                let named = template["name"]?.stringValue.map { template.setting("name", .string(prefix + $0)) } ?? template
                templates.append(CatalogItem(kind: .resource, server: config.name, exposedName: uriTemplate, upstreamName: uriTemplate,
                                             encoded: named.canonicallyEncoded(), definitionHash: nil, pinnedDefinition: nil, isTemplate: true))
            }
        }
    }

    private static func add(_ kind: MCPToolPolicy.Kind, server: String, exposed: String, upstream: String, definition: JSONValue,
                            pinned: Data?, into items: inout [CatalogItem], index: inout [String: Int], collisions: inout [String]) {
        if let existing = index[exposed] {
            collisions.append("\(kind.rawValue) '\(exposed)' of '\(server)' collides with the one of '\(items[existing].server)'; '\(items[existing].server)' keeps it")
            return
        }
        index[exposed] = items.count
        items.append(CatalogItem(kind: kind, server: server, exposedName: exposed, upstreamName: upstream, encoded: definition.canonicallyEncoded(),
                                 definitionHash: pinned.map { Hex.encode(SHA256.hash(data: $0)) }, pinnedDefinition: pinned.map { String(decoding: $0, as: UTF8.self) },
                                 isTemplate: false))
    }

    /// The template whose URI template could have produced `uri` (literal parts match in order).
    func template(matching uri: String) -> CatalogItem? {
        templates.first { Self.uri(uri, matches: $0.upstreamName) }
    }

    static func uri(_ uri: String, matches template: String) -> Bool {
        var pattern = ""
        var inExpression = false
        for character in template {
            if character == "{" { inExpression = true; pattern += "*" }
            else if character == "}" { inExpression = false }
            else if !inExpression { pattern.append(character == "*" || character == "?" ? "?" : character) }
        }
        return Glob.matches(pattern, uri)
    }

    /// Pinning covers what a model reads and what it sends: name, description and schemas.
    static func definitionHash(_ tool: JSONValue) -> String {
        Hex.encode(SHA256.hash(data: pinnedDefinition(tool)))
    }

    /// The canonical JSON of what a pin covers; its SHA-256 is the pin.
    static func pinnedDefinition(_ tool: JSONValue) -> Data {
        let pinned: JSONValue = .object([
            "name": tool["name"] ?? .null,
            "description": tool["description"] ?? .null,
            "inputSchema": tool["inputSchema"] ?? .null,
            "outputSchema": tool["outputSchema"] ?? .null,
        ])
        return (try? canonicalEncoder.encode(pinned)) ?? Data()
    }

    static func digest(_ value: JSONValue?) -> String {
        guard let value else { return "" }
        return Hex.encode(SHA256.hash(data: value.canonicallyEncoded()).prefix(16))
    }

    private static let canonicalEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}
