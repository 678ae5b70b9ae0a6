/// `GET /v1/mcp/visible`: what an MCP gateway shows one identity, by the names it shows them.
public struct MCPVisibleItems: Codable, Sendable, Equatable {
    public var service: String
    public var identity: String
    public var tools: [String]
    public var resources: [String]
    public var templates: [String]
    public var prompts: [String]
    /// The rules also name people: acting for a person narrows this further to what they may use.
    public var narrowedByPerson: Bool
    /// The policy serves only agents acting for a person: on its own the agent sees nothing.
    public var requiresPerson: Bool
    /// False when the gateway has not reported what it offers (only pinned tools are known).
    public var catalogReported: Bool

    public init(service: String, identity: String, tools: [String], resources: [String], templates: [String], prompts: [String],
                narrowedByPerson: Bool, requiresPerson: Bool, catalogReported: Bool) {
        self.service = service; self.identity = identity; self.tools = tools; self.resources = resources; self.templates = templates
        self.prompts = prompts; self.narrowedByPerson = narrowedByPerson; self.requiresPerson = requiresPerson; self.catalogReported = catalogReported
    }
}

/// `GET /v1/mcp/callers`: who may call a tool (or read a resource, get a prompt) of a gateway.
public struct MCPItemCallers: Codable, Sendable, Equatable {
    public var service: String
    public var name: String
    public var identities: [String]
    public var narrowedByPerson: Bool
    public init(service: String, name: String, identities: [String], narrowedByPerson: Bool) {
        self.service = service; self.name = name; self.identities = identities; self.narrowedByPerson = narrowedByPerson
    }
}
