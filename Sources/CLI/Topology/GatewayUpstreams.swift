import Foundation
import Shared

/// A topology's gateway upstream as a tunneler reads it: `app:` (+ `path:`, default `/mcp`)
/// becomes that app's URL, and placeholders in `command` and `env` are filled in.
enum GatewayUpstreams {
    static func resolve(_ upstream: JSONValue, appAddress: (String) -> String?, fill: (String) -> String) -> JSONValue {
        guard case .object(var entry) = upstream else { return upstream }
        if let app = entry.removeValue(forKey: "app")?.stringValue, let address = appAddress(app) {
            let path = entry.removeValue(forKey: "path")?.stringValue ?? "/mcp"
            entry["url"] = .string("http://\(address)\(path)")
        }
        if let command = entry["command"]?.arrayValue {
            entry["command"] = .array(command.map { $0.stringValue.map { .string(fill($0)) } ?? $0 })
        }
        if let env = entry["env"]?.objectValue {
            entry["env"] = .object(env.mapValues { $0.stringValue.map { .string(fill($0)) } ?? $0 })
        }
        return .object(entry)
    }

    /// The gateway fields of a tunneler config's host entry.
    static func hostFields(_ host: TopologyFile.Host, appAddress: (String) -> String?, fill: (String) -> String) -> [String: JSONValue] {
        guard let kind = host.kind else { return [:] }
        var fields: [String: JSONValue] = ["kind": .string(kind)]
        if kind == "llm-gateway" {
            fields["providers"] = .array((host.providers ?? []).map { provider in
                guard case .object(var entry) = provider else { return provider }
                if let app = entry.removeValue(forKey: "app")?.stringValue, let address = appAddress(app) {
                    entry["base_url"] = .string("http://\(address)\(entry.removeValue(forKey: "path")?.stringValue ?? "")")
                }
                for key in ["service_account_file", "api_key_file"] { if let value = entry[key]?.stringValue { entry[key] = .string(fill(value)) } }
                return .object(entry)
            })
            if let timeout = host.timeout_ms { fields["timeout_ms"] = .number(Double(timeout)) }
            if let retries = host.retries { fields["retries"] = .number(Double(retries)) }
            return fields
        }
        fields["upstreams"] = .array((host.upstreams ?? []).map { resolve($0, appAddress: appAddress, fill: fill) })
        if let separator = host.separator { fields["separator"] = .string(separator) }
        if let pageSize = host.page_size { fields["page_size"] = .number(Double(pageSize)) }
        return fields
    }
}
