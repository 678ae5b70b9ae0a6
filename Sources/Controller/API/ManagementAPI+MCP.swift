import Foundation
import Hummingbird
import Shared

/// MCP gateway operations: tool-definition pins and their approval, what each gateway offers,
/// and who sees what through it.
extension ManagementAPI {
    var visibility: MCPVisibility { MCPVisibility(snapshot: policies.snapshot, pins: pins) }

    func registerMCP(_ admin: RouterGroup<BasicRequestContext>) {
        admin.get("mcp/pins") { request, _ in pins.list(service: request.uri.queryParameters.get("service")) }
        admin.post("mcp/approve") { request, context in
            let body = try await request.decode(as: ToolApproval.self, context: context)
            guard policies.snapshot.services[body.service] != nil else {
                throw HTTPError(.notFound, message: "no service named '\(body.service)'")
            }
            let approved = try approveTools(service: body.service, tools: body.tools ?? [])
            guard !approved.isEmpty || (body.tools ?? []).isEmpty else {
                throw HTTPError(.notFound, message: "none of \(body.tools ?? []) has a changed definition waiting for approval on '\(body.service)'; see GET /v1/mcp/pins")
            }
            return ToolApprovalResult(service: body.service, approved: approved)
        }
        admin.get("mcp/catalog") { request, _ in
            let service = try Self.requiredQuery(request, "service")
            guard let catalog = pins.catalogs.catalog(of: service) else {
                throw HTTPError(.notFound, message: "no MCP gateway hosting '\(service)' has reported what it offers")
            }
            return catalog
        }
        admin.get("mcp/visible") { request, _ in
            let service = try Self.requiredQuery(request, "service"), identity = try Self.requiredQuery(request, "identity")
            guard policies.snapshot.services[service] != nil else { throw HTTPError(.notFound, message: "no service named '\(service)'") }
            guard policies.snapshot.allIdentityRoles[identity] != nil else { throw HTTPError(.notFound, message: "no identity named '\(identity)'") }
            guard let items = visibility.visible(service: service, identity: identity) else {
                throw HTTPError(.notFound, message: "service '\(service)' has no mcp-tools.v1 config: its gateway shows nothing")
            }
            return items
        }
        admin.get("mcp/callers") { request, _ in
            let service = try Self.requiredQuery(request, "service"), name = try Self.requiredQuery(request, "name")
            guard let callers = visibility.callers(service: service, name: name) else {
                throw HTTPError(.notFound, message: "the MCP gateway of '\(service)' offers nothing named '\(name)' (or the service has no mcp-tools.v1 config)")
            }
            return callers
        }
    }

    static func requiredQuery(_ request: Request, _ name: String) throws -> String {
        guard let value = request.uri.queryParameters.get(name), !value.isEmpty else {
            throw HTTPError(.badRequest, message: "the query parameter '\(name)' is required")
        }
        return value
    }
}

extension GatewayCatalog: ResponseEncodable {}
extension MCPVisibleItems: ResponseEncodable {}
extension MCPItemCallers: ResponseEncodable {}
