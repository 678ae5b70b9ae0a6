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

    func updateIdentityRoles(_ name: String, roles: [String]) throws -> IdentityRecord {
        try Validation.attributes(roles)
        let row = try store.write { db -> IdentityRow? in
            guard var row = try db.one(IdentityRow.self, key: name) else { return nil }
            row.roles = roles
            try db.update(row)
            return row
        }
        guard let row else { throw HTTPError(.notFound, message: "no identity named '\(name)'") }
        try changed("identity '\(name)' roles set to \(roles)")
        return row.record(token: nil)
    }

    func createService(_ spec: ServiceSpec) throws {
        try Validation.name(spec.name, kind: "service")
        try validateService(spec)
        try insert(ServiceRow(name: spec.name, roles: spec.roles, configs: spec.configs), kind: "service", name: spec.name)
        try changed("service '\(spec.name)' created")
    }

    func updateService(_ spec: ServiceSpec) throws {
        try validateService(spec)
        let updated = try store.write { db -> Bool in
            guard var row = try db.one(ServiceRow.self, key: spec.name) else { return false }
            row.roles = spec.roles
            row.configs = spec.configs
            try db.update(row)
            return true
        }
        guard updated else { throw HTTPError(.notFound, message: "no service named '\(spec.name)'") }
        try changed("service '\(spec.name)' set to roles \(spec.roles), configs \(spec.configs)")
    }

    private func validateService(_ spec: ServiceSpec) throws {
        try Validation.attributes(spec.roles)
        let rows = try store.read { db in try spec.configs.map { ($0, try db.one(ConfigRow.self, key: $0)) } }
        let missing = rows.filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty else { throw HTTPError(.badRequest, message: "unknown config(s): \(missing.joined(separator: ", "))") }
        let llmPolicies = rows.compactMap(\.1).filter { $0.type == LLMPolicy.configType }.map(\.name)
        guard llmPolicies.count <= 1 else {
            throw HTTPError(.badRequest, message: "service '\(spec.name)' names \(llmPolicies.count) llm-policy.v1 configs (\(llmPolicies.joined(separator: ", "))); an LLM gateway follows exactly one: merge them")
        }
    }

    func deleteService(_ name: String) throws {
        try delete(ServiceRow.self, name: name, kind: "service")
        // What its gateway offered goes with it (its tool pins stay: approvals are history).
        if try store.write({ try $0.delete(GatewayCatalogRow.self, key: name) }) {
            try pins.catalogs.reload()
            changes.announce("pins")
        }
        try changed("service '\(name)' deleted")
    }

    func updateServicePolicy(_ spec: ServicePolicySpec) throws {
        try Validation.roles(spec.identityRoles, field: "identityRoles")
        try Validation.roles(spec.serviceRoles, field: "serviceRoles")
        let updated = try store.write { db -> Bool in
            guard var row = try db.one(ServicePolicyRow.self, key: spec.name) else { return false }
            row.type = spec.type
            row.identityRoles = spec.identityRoles
            row.serviceRoles = spec.serviceRoles
            try db.update(row)
            return true
        }
        guard updated else { throw HTTPError(.notFound, message: "no service policy named '\(spec.name)'") }
        try changed("service policy '\(spec.name)' set to \(spec.type.rawValue) \(spec.identityRoles) → \(spec.serviceRoles)")
    }

    func createConfig(_ spec: ConfigSpec) throws {
        try Validation.name(spec.name, kind: "config")
        try Validation.config(spec)
        try insert(ConfigRow(name: spec.name, type: spec.type, data: spec.data), kind: "config", name: spec.name)
        try changed("config '\(spec.name)' created")
    }

    func updateConfig(_ spec: ConfigSpec) throws {
        try Validation.config(spec)
        let updated = try store.write { db -> Bool in
            guard var row = try db.one(ConfigRow.self, key: spec.name) else { return false }
            row.type = spec.type
            row.data = spec.data
            try db.update(row)
            return true
        }
        guard updated else { throw HTTPError(.notFound, message: "no config named '\(spec.name)'") }
        try changed("config '\(spec.name)' updated")
    }

    func deleteConfig(_ name: String) throws {
        try delete(ConfigRow.self, name: name, kind: "config")
        try changed("config '\(name)' deleted")
    }
}
