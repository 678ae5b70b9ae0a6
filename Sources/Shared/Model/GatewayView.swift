import Foundation

/// What a hosting tunneler's gateway needs from the controller to decide, per caller, what it
/// may see: the service's gateway configs, the role attributes of every identity that may dial
/// the service, and the approved tool-definition pins.
public struct GatewayView: Codable, Sendable, Equatable {
    /// Changes whenever anything below changes, so a poll that finds it unchanged does nothing.
    public var generation: String
    public var configs: [ConfigSpec]
    /// Identity name → role attributes, for identities with a Dial policy on the service.
    public var callers: [String: [String]]
    /// `server__tool` → the approved SHA-256 of its definition.
    public var pins: [String: String]
    /// The identity providers whose tokens name the people agents act for.
    public var signers: [ExternalJWTSignerSpec]
    /// Which agents may act for which people.
    public var delegations: [DelegationPolicySpec]

    public init(generation: String, configs: [ConfigSpec], callers: [String: [String]], pins: [String: String],
                signers: [ExternalJWTSignerSpec] = [], delegations: [DelegationPolicySpec] = []) {
        self.generation = generation
        self.configs = configs
        self.callers = callers
        self.pins = pins
        self.signers = signers
        self.delegations = delegations
    }
}

/// One event a gateway reports for the audit trail. `detail` is JSON; it never carries the
/// content of arguments or results, only their digests.
public struct GatewayAuditEvent: Codable, Sendable, Equatable {
    public var type: String
    public var identity: String?
    /// The person the agent acted for, when it presented their token.
    public var user: String?
    public var circuit: UInt64?
    public var detail: String

    public init(type: String, identity: String?, user: String? = nil, circuit: UInt64?, detail: String) {
        self.type = type
        self.identity = identity
        self.user = user
        self.circuit = circuit
        self.detail = detail
    }
}

/// A tool definition's pin as the controller holds it: the approved hash, and the hash an
/// upstream changed it to while that change waits for an operator.
public struct ToolPin: Codable, Sendable, Equatable {
    public var service: String
    public var tool: String
    public var approvedHash: String
    public var pendingHash: String?
    public var updatedAt: Date
    /// The definitions (canonical JSON) behind the hashes, when the gateway reported them.
    public var approvedDefinition: String?
    public var pendingDefinition: String?

    public init(service: String, tool: String, approvedHash: String, pendingHash: String?, updatedAt: Date,
                approvedDefinition: String? = nil, pendingDefinition: String? = nil) {
        self.service = service
        self.tool = tool
        self.approvedHash = approvedHash
        self.pendingHash = pendingHash
        self.updatedAt = updatedAt
        self.approvedDefinition = approvedDefinition
        self.pendingDefinition = pendingDefinition
    }
}

/// `POST /v1/mcp/approve`: approve the changed definitions of these tools (all when omitted).
public struct ToolApproval: Codable, Sendable, Equatable {
    public var service: String
    public var tools: [String]?
    public init(service: String, tools: [String]?) { self.service = service; self.tools = tools }
}

public struct ToolApprovalResult: Codable, Sendable, Equatable {
    public var service: String
    public var approved: [String]
    public init(service: String, approved: [String]) { self.service = service; self.approved = approved }
}
