import Foundation
import Hummingbird
import Shared

/// The changes the management API's routes and the console's forms both make: one operation
/// each, so that a console action is exactly the API call (and CLI command) it mirrors.
extension ManagementAPI {
    func createIdentity(_ spec: IdentitySpec) throws -> IdentityRecord {
        try Validation.name(spec.name, kind: "identity")
        try Validation.attributes(spec.roles)
        let row = IdentityRow(name: spec.name, roles: spec.roles, enrolled: false, createdAt: Date())
        try insert(row, kind: "identity", name: spec.name)
        let token = try enrollment.issueToken(for: spec.name, kind: .identity)
        try changed("identity '\(spec.name)' created")
        return row.record(token: token)
    }

    func deleteIdentity(_ name: String) throws {
        try delete(IdentityRow.self, name: name, kind: "identity")
        try revoke(name, kind: .identity, reason: "identity '\(name)' deleted")
        try changed("identity '\(name)' deleted")
    }

    func createServicePolicy(_ spec: ServicePolicySpec) throws {
        try Validation.name(spec.name, kind: "service policy")
        try Validation.roles(spec.identityRoles, field: "identityRoles")
        try Validation.roles(spec.serviceRoles, field: "serviceRoles")
        try insert(ServicePolicyRow(name: spec.name, type: spec.type, identityRoles: spec.identityRoles, serviceRoles: spec.serviceRoles),
                   kind: "service policy", name: spec.name)
        try changed("service policy '\(spec.name)' created")
    }

    func deleteServicePolicy(_ name: String) throws {
        try delete(ServicePolicyRow.self, name: name, kind: "service policy")
        try changed("service policy '\(name)' deleted")
    }

    func approveTools(service: String, tools: [String]) throws -> [String] {
        let approved = try pins.approve(service: service, tools: tools, by: "operator")
        if !approved.isEmpty { changes.announce("pins") }
        return approved
    }
}
