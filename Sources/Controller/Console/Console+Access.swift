import Foundation
import Hummingbird
import Shared

/// The console's access page: identities, services, service policies and configs (list, search,
/// create, edit, delete), and who can reach what — an identity's services and, through an MCP
/// gateway, the exact tools, resources and prompts it sees; a tool's callers.
extension ManagementAPI {
    /// At most this many identities are listed; a search narrows them.
    static let consoleIdentityRows = 200
    static let consoleServiceRows = 200

    func applyAccessForm(_ form: [String: String]) throws -> String {
        func list(_ field: String) -> [String] {
            (form[field] ?? "").split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\r" }).map(String.init).filter { !$0.isEmpty }
        }
        func type() throws -> SessionType {
            guard let type = SessionType(rawValue: form["type"] ?? "") else { throw HTTPError(.badRequest, message: "type must be dial or bind") }
            return type
        }
        func data() throws -> JSONValue {
            do { return try JSONDecoder().decode(JSONValue.self, from: Data((form["data"] ?? "").utf8)) } catch {
                throw HTTPError(.badRequest, message: "the config's data is not JSON: \(error)")
            }
        }
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        switch form["action"] {
        case "create-identity":
            let record = try createIdentity(IdentitySpec(name: name, roles: list("roles")))
            return "Identity '\(record.name)' created; its enrollment token: \(record.enrollmentToken ?? "")"
        case "update-identity":
            _ = try updateIdentityRoles(name, roles: list("roles"))
            return "Identity '\(name)' now has roles \(list("roles").joined(separator: ", "))"
        case "delete-identity":
            try deleteIdentity(name)
            return "Identity '\(name)' deleted"
        case "create-service":
            try createService(ServiceSpec(name: name, roles: list("roles"), configs: list("configs")))
            return "Service '\(name)' created"
        case "update-service":
            try updateService(ServiceSpec(name: name, roles: list("roles"), configs: list("configs")))
            return "Service '\(name)' updated"
        case "delete-service":
            try deleteService(name)
            return "Service '\(name)' deleted"
        case "create-service-policy":
            try createServicePolicy(ServicePolicySpec(name: name, type: try type(), identityRoles: list("identities"), serviceRoles: list("services")))
            return "Service policy '\(name)' created"
        case "update-service-policy":
            try updateServicePolicy(ServicePolicySpec(name: name, type: try type(), identityRoles: list("identities"), serviceRoles: list("services")))
            return "Service policy '\(name)' updated"
        case "delete-service-policy":
            try deleteServicePolicy(name)
            return "Service policy '\(name)' deleted"
        case "create-config":
            try createConfig(ConfigSpec(name: name, type: form["type"] ?? "", data: try data()))
            return "Config '\(name)' created"
        case "update-config":
            try updateConfig(ConfigSpec(name: name, type: form["type"] ?? "", data: try data()))
            return "Config '\(name)' updated"
        case "delete-config":
            try deleteConfig(name)
            return "Config '\(name)' deleted"
        default:
            throw HTTPError(.badRequest, message: "unknown action")
        }
    }

    func accessPage(_ request: Request, notice: String?) throws -> String {
        let token = csrf(request)
        let query = request.uri.queryParameters
        let snapshot = policies.snapshot
        let search = (query.get("q") ?? "").lowercased()
        func matches(_ name: String, _ more: [String] = []) -> Bool {
            search.isEmpty || name.lowercased().contains(search) || more.contains { $0.lowercased().contains(search) }
        }
        let (allIdentities, allPolicies, allServices, allConfigs) = try store.read { db in
            (try db.all(IdentityRow.self, orderBy: "name"), try db.all(ServicePolicyRow.self, orderBy: "name"),
             try db.all(ServiceRow.self, orderBy: "name"), try db.all(ConfigRow.self, orderBy: "name"))
        }
        let identities = allIdentities.filter { matches($0.name, $0.roles) }
        let services = allServices.filter { matches($0.name, $0.roles + $0.configs) }
        let servicePolicies = allPolicies.filter { matches($0.name, $0.identityRoles + $0.serviceRoles) }
        let configs = allConfigs.filter { matches($0.name, [$0.type]) }
        let form = AccessForms(csrf: token)
        var body = notice ?? ""
        body += "<nav class=\"sub\" aria-label=\"on this page\"><a href=\"#identities\">Identities</a><a href=\"#services\">Services</a>"
            + "<a href=\"#policies\">Service policies</a><a href=\"#configs\">Configs</a></nav>"
        body += "<form method=\"get\" action=\"/console/access\" role=\"search\"><label>Search names, roles and types <input name=\"q\" value=\"\(ConsoleHTML.escape(search))\"></label><button>Search</button></form>"

        // Who can reach what: a chosen identity, service, or gateway item first.
        if let identity = query.get("identity") { body += identityView(identity) }
        if let service = query.get("service") { body += serviceView(service, item: query.get("item")) }

        let shown = identities.prefix(Self.consoleIdentityRows)
        body += "<section id=\"identities\"><h2>Identities</h2>"
        body += ConsoleHTML.table(["identity", "roles", "enrolled", ""], shown.map {
            [ConsoleHTML.link("/console/access", ["identity": $0.name], $0.name),
             form.edit("update-identity", $0.name, fields: [("roles", "roles", $0.roles.joined(separator: ", "))]),
             $0.enrolled ? "yes" : "no", form.delete("delete-identity", $0.name)]
        }, caption: "Identities (\(shown.count) of \(identities.count) matching, \(allIdentities.count) in all)")
        body += form.create("create-identity", legend: "New identity", fields: [("name", "Name", true), ("roles", "Roles (comma-separated)", false)])
        body += "</section>"

        body += "<section id=\"services\"><h2>Services</h2>"
        body += "<form method=\"get\" action=\"/console/access\"><label>Show service <input name=\"service\"></label><button>Show</button></form>"
        let listed = services.prefix(Self.consoleServiceRows)
        body += ConsoleHTML.table(["service", "roles, configs", "who can dial it", ""], listed.map { service in
            let callers = snapshot.callers(of: service.name).keys.sorted()
            let named = callers.prefix(10).joined(separator: ", ") + (callers.count > 10 ? " and \(callers.count - 10) more" : "")
            return [ConsoleHTML.link("/console/access", ["service": service.name], service.name),
                    form.edit("update-service", service.name, fields: [("roles", "roles", service.roles.joined(separator: ", ")),
                                                                      ("configs", "configs", service.configs.joined(separator: ", "))]),
                    ConsoleHTML.escape(named), form.delete("delete-service", service.name)]
        }, caption: "Services (\(listed.count) of \(services.count) matching, \(allServices.count) in all)")
        body += form.create("create-service", legend: "New service", fields: [("name", "Name", true), ("roles", "Roles (comma-separated)", false),
                                                                              ("configs", "Configs (comma-separated names)", false)])
        body += "</section>"

        body += "<section id=\"policies\"><h2>Service policies</h2>"
        body += ConsoleHTML.table(["service policy", "type, identities, services", ""], servicePolicies.map {
            [ConsoleHTML.escape($0.name),
             form.edit("update-service-policy", $0.name, fields: [("type", "type", $0.type.rawValue),
                                                                 ("identities", "identities", $0.identityRoles.joined(separator: ", ")),
                                                                 ("services", "services", $0.serviceRoles.joined(separator: ", "))]),
             form.delete("delete-service-policy", $0.name)]
        }, caption: "Service policies (\(servicePolicies.count) matching of \(allPolicies.count))")
        body += """
        <form method="post" action="/console/access"><fieldset><legend>New service policy</legend>\(ConsoleHTML.hidden("csrf", token))\(ConsoleHTML.hidden("action", "create-service-policy"))
        <label>Name <input name="name" required></label>
        <label>Type <select name="type"><option value="dial">dial</option><option value="bind">bind</option></select></label>
        <label>Identities ('#attribute', '@name' or '#all') <input name="identities" required></label>
        <label>Services ('#attribute', '@name' or '#all') <input name="services" required></label><button>Create service policy</button></fieldset></form>
        """
        body += "</section>"

        body += "<section id=\"configs\"><h2>Configs</h2>"
        body += ConsoleHTML.table(["config", "type", "data", ""], configs.map {
            [ConsoleHTML.escape($0.name), ConsoleHTML.escape($0.type), form.editData($0.name, type: $0.type, data: $0.data), form.delete("delete-config", $0.name)]
        }, caption: "Configs (\(configs.count) matching of \(allConfigs.count))")
        body += """
        <form method="post" action="/console/access"><fieldset><legend>New config</legend>\(ConsoleHTML.hidden("csrf", token))\(ConsoleHTML.hidden("action", "create-config"))
        <label>Name <input name="name" required></label>
        <label>Type <select name="type">\(ConfigSpec.knownTypes.map { "<option>\(ConsoleHTML.escape($0))</option>" }.joined())</select></label>
        <label>Data (JSON) <textarea name="data" rows="6" cols="70" required>{}</textarea></label><button>Create config</button></fieldset></form>
        """
        body += "</section>"
        return ConsoleHTML.page("Access", section: "access", csrf: token, body: body)
    }

    /// An identity's services, and for each MCP gateway among them what it sees there.
    private func identityView(_ identity: String) -> String {
        let grants = policies.snapshot.grants(for: identity)
        var html = "<section id=\"identity\" aria-label=\"what \(ConsoleHTML.escape(identity)) can reach\">"
        html += ConsoleHTML.table(["service", "dial", "bind", "through its MCP gateway"], grants.map { grant in
            let seen = grant.canDial ? visibility.visible(service: grant.name, identity: identity) : nil
            return [ConsoleHTML.link("/console/access", ["service": grant.name], grant.name), grant.canDial ? "yes" : "", grant.canBind ? "yes" : "",
                    seen.map { mcpItems($0) } ?? ""]
        }, caption: "What '\(identity)' can reach")
        return html + "</section>"
    }

    private func mcpItems(_ seen: MCPVisibleItems) -> String {
        func names(_ names: [String], _ kind: String, _ label: String) -> String {
            let links = names.map { ConsoleHTML.link("/console/access", ["service": seen.service, "item": $0], $0) }
            return "<p>\(label): <span class=\"\(kind)\">\(links.joined(separator: ", "))</span></p>"
        }
        var html = names(seen.tools, "tools", "Tools") + names(seen.resources, "resources", "Resources")
            + names(seen.templates, "templates", "Resource templates") + names(seen.prompts, "prompts", "Prompts")
        if seen.requiresPerson { html += "<p class=\"note\">Served only when acting for a person.</p>" }
        if seen.narrowedByPerson { html += "<p class=\"note\">Acting for a person, it sees only what that person may use too.</p>" }
        if !seen.catalogReported { html += "<p class=\"note\">Its gateway has not reported resources and prompts: only pinned tools are known.</p>" }
        return html
    }

    /// A service: who may dial it and, for an MCP gateway, everything it offers — and, for a
    /// chosen item, who sees it.
    private func serviceView(_ service: String, item: String?) -> String {
        guard policies.snapshot.services[service] != nil else {
            return "<p role=\"alert\" class=\"error\">No service named '\(ConsoleHTML.escape(service))'.</p>"
        }
        var html = "<section id=\"service\" aria-label=\"service \(ConsoleHTML.escape(service))\"><h2>Service '\(ConsoleHTML.escape(service))'</h2>"
        if let item {
            if let callers = visibility.callers(service: service, name: item) {
                html += "<p>Who can use '\(ConsoleHTML.escape(item))' through '\(ConsoleHTML.escape(service))':</p><ul class=\"callers\">"
                    + callers.identities.map { "<li>\(ConsoleHTML.link("/console/access", ["identity": $0], $0))</li>" }.joined() + "</ul>"
                if callers.identities.isEmpty { html += "<p>Nobody.</p>" }
                if callers.narrowedByPerson { html += "<p class=\"note\">Acting for a person, only if that person may use it too.</p>" }
            } else {
                html += "<p role=\"alert\" class=\"error\">The gateway of '\(ConsoleHTML.escape(service))' offers nothing named '\(ConsoleHTML.escape(item))'.</p>"
            }
        }
        let (entries, reported) = visibility.entries(of: service)
        if visibility.policy(of: service) != nil {
            let pending = Set(pins.list(service: service).filter { $0.pendingHash != nil }.map(\.tool))
            html += ConsoleHTML.table(["kind", "name", "server", "upstream name", ""], entries.sorted { ($0.kind.rawValue, $0.name) < ($1.kind.rawValue, $1.name) }.map {
                [$0.kind.rawValue, ConsoleHTML.link("/console/access", ["service": service, "item": $0.name], $0.name), ConsoleHTML.escape($0.server),
                 ConsoleHTML.escape($0.item), pending.contains($0.name) ? "<a href=\"/console/approvals\">changed: waits for approval</a>" : ""]
            }, caption: reported ? "What its MCP gateway offers (\(entries.count))" : "Tools pinned for its MCP gateway (\(entries.count))")
        }
        return html + "</section>"
    }
}

/// The small forms of the access page, each carrying the session's CSRF token.
private struct AccessForms {
    let csrf: String

    private func open(_ action: String, _ name: String?, inline: Bool) -> String {
        "<form\(inline ? " class=\"inline\"" : "") method=\"post\" action=\"/console/access\">\(ConsoleHTML.hidden("csrf", csrf))\(ConsoleHTML.hidden("action", action))"
            + (name.map { ConsoleHTML.hidden("name", $0) } ?? "")
    }

    func delete(_ action: String, _ name: String) -> String {
        open(action, name, inline: true) + "<button aria-label=\"delete \(ConsoleHTML.escape(name))\">Delete</button></form>"
    }

    /// Inline edit of a row's fields: (field, label, current value).
    func edit(_ action: String, _ name: String, fields: [(String, String, String)]) -> String {
        open(action, name, inline: true) + fields.map { field, label, value in
            "<input name=\"\(field)\" value=\"\(ConsoleHTML.escape(value))\" aria-label=\"\(ConsoleHTML.escape(label)) of \(ConsoleHTML.escape(name))\">"
        }.joined() + "<button aria-label=\"save \(ConsoleHTML.escape(name))\">Save</button></form>"
    }

    func editData(_ name: String, type: String, data: JSONValue) -> String {
        let text = ConsoleHTML.readableJSON(data)
        return open("update-config", name, inline: false) + ConsoleHTML.hidden("type", type)
            + "<textarea name=\"data\" rows=\"\(min(16, text.split(separator: "\n").count + 1))\" cols=\"70\" aria-label=\"data of \(ConsoleHTML.escape(name))\">"
            + ConsoleHTML.escape(text) + "</textarea><button aria-label=\"save \(ConsoleHTML.escape(name))\">Save</button></form>"
    }

    func create(_ action: String, legend: String, fields: [(String, String, Bool)]) -> String {
        "<form method=\"post\" action=\"/console/access\"><fieldset><legend>\(ConsoleHTML.escape(legend))</legend>\(ConsoleHTML.hidden("csrf", csrf))\(ConsoleHTML.hidden("action", action))"
            + fields.map { field, label, required in "<label>\(ConsoleHTML.escape(label)) <input name=\"\(field)\"\(required ? " required" : "")></label>" }.joined()
            + "<button>\(ConsoleHTML.escape(legend.replacingOccurrences(of: "New", with: "Create")))</button></fieldset></form>"
    }
}
