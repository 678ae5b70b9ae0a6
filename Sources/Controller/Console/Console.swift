import Foundation
import Hummingbird
import Shared

/// The operator console, served by the controller on the management API's TLS listener under
/// `/console`: server-rendered pages over what the management API serves, and forms for what
/// it changes (each the same operation as an API call and a CLI command).
extension ManagementAPI {
    func registerConsole(on router: Router<BasicRequestContext>) {
        let console = router.group("console")
        console.get("console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsoleHTML.style)))
        }
        console.get("login") { request, _ in
            if let token = ConsoleSession.token(of: request), admins.isValid(token) { return ConsoleSession.redirect("/console/mesh") }
            return ConsoleSession.html(ConsoleHTML.signIn())
        }
        console.post("login") { request, _ in
            let form = try await ConsoleSession.form(request)
            do {
                let session = try admins.login(LoginRequest(username: form["username"] ?? "", password: form["password"] ?? ""))
                return ConsoleSession.redirect("/console/mesh", headers: [.setCookie: ConsoleSession.setCookie(session.token, lifetime: AdminSessions.lifetime)])
            } catch {
                return ConsoleSession.html(ConsoleHTML.signIn(error: "Wrong username or password."), status: .unauthorized)
            }
        }
        console.get("") { _, _ in ConsoleSession.redirect("/console/mesh") }

        // Everything else needs the session; every POST its CSRF token.
        let pages = console.group().add(middleware: ConsoleGuard(sessions: admins))
        pages.post("logout") { request, _ in
            if let token = ConsoleSession.token(of: request) { admins.logout(token) }
            return ConsoleSession.redirect("/console/login", headers: [.setCookie: ConsoleSession.clearCookie])
        }
        pages.get("mesh") { request, _ in
            ConsoleSession.html(try await meshPage(request))
        }
        pages.get("access") { request, _ in
            ConsoleSession.html(try accessPage(request, notice: nil))
        }
        pages.post("access") { request, _ in
            let form = try await ConsoleSession.form(request)
            let notice: String
            do {
                notice = try applyAccessForm(form)
            } catch {
                return ConsoleSession.html(try accessPage(request, notice: "<p role=\"alert\" class=\"error\">\(ConsoleHTML.escape(Self.reason(error)))</p>"),
                                           status: .badRequest)
            }
            return ConsoleSession.html(try accessPage(request, notice: "<p role=\"status\" class=\"ok\">\(ConsoleHTML.escape(notice))</p>"))
        }
        pages.get("audit") { request, _ in ConsoleSession.html(try auditPage(request)) }
        pages.get("spend") { request, _ in ConsoleSession.html(try spendPage(request)) }
        pages.get("approvals") { request, _ in ConsoleSession.html(approvalsPage(request, notice: nil)) }
        pages.post("approvals") { request, _ in
            let form = try await ConsoleSession.form(request)
            let service = form["service"] ?? "", tool = form["tool"] ?? ""
            guard policies.snapshot.services[service] != nil else {
                return ConsoleSession.html(approvalsPage(request, notice: "<p role=\"alert\" class=\"error\">No service named '\(ConsoleHTML.escape(service))'.</p>"),
                                           status: .notFound)
            }
            let approved = try approveTools(service: service, tools: tool.isEmpty ? [] : [tool])
            return ConsoleSession.html(approvalsPage(request, notice: "<p role=\"status\" class=\"ok\">Approved: \(ConsoleHTML.escape(approved.joined(separator: ", ")))</p>"))
        }
    }

    private static func reason(_ error: Error) -> String {
        if let error = error as? HTTPError { return error.body ?? "\(error.status)" }
        return "\(error)"
    }

    private func csrf(_ request: Request) -> String { ConsoleSession.token(of: request).map(ConsoleSession.csrf(for:)) ?? "" }

    // MARK: mesh

    private func meshPage(_ request: Request) async throws -> String {
        let status = try await networkStatus()
        let chosen = request.uri.queryParameters.get("circuit").flatMap { UInt64($0) }
        let path = status.circuits.first { $0.id == chosen }?.path ?? []
        let names = status.routers.sorted()
        // Routers on a circle; links as lines with their latency; a chosen circuit's path drawn over them.
        let size = 420.0, radius = names.count > 1 ? 150.0 : 0.0
        var position: [String: (Double, Double)] = [:]
        for (index, name) in names.enumerated() {
            let angle = 2 * Double.pi * Double(index) / Double(max(names.count, 1)) - Double.pi / 2
            position[name] = (size / 2 + radius * cos(angle), size / 2 + radius * sin(angle))
        }
        var svg = "<svg role=\"img\" aria-label=\"routers and links\" width=\"\(Int(size))\" height=\"\(Int(size))\" viewBox=\"0 0 \(Int(size)) \(Int(size))\">"
        for link in status.links {
            guard let a = position[link.a], let b = position[link.b] else { continue }
            svg += "<line class=\"link\" x1=\"\(a.0)\" y1=\"\(a.1)\" x2=\"\(b.0)\" y2=\"\(b.1)\"/>"
            svg += "<text x=\"\((a.0 + b.0) / 2 + 4)\" y=\"\((a.1 + b.1) / 2 - 4)\">\(String(format: "%.2f ms", link.latencyMs))</text>"
        }
        for (from, to) in zip(path, path.dropFirst()) {
            guard let a = position[from], let b = position[to] else { continue }
            svg += "<line class=\"path\" x1=\"\(a.0)\" y1=\"\(a.1)\" x2=\"\(b.0)\" y2=\"\(b.1)\"/>"
        }
        let perRouter = Dictionary(grouping: status.circuits, by: \.router).mapValues(\.count)
        for name in names {
            guard let p = position[name] else { continue }
            svg += "<circle class=\"router\" cx=\"\(p.0)\" cy=\"\(p.1)\" r=\"9\"/>"
            svg += "<text class=\"router-label\" x=\"\(p.0 + 12)\" y=\"\(p.1 + 4)\">\(ConsoleHTML.escape(name)) (\(perRouter[name] ?? 0))</text>"
        }
        svg += "</svg>"
        let routers = ConsoleHTML.table(["router", "circuits starting here"], names.map { [ConsoleHTML.escape($0), "\(perRouter[$0] ?? 0)"] },
                                        caption: "Routers online (\(names.count))")
        let links = ConsoleHTML.table(["a", "b", "latency"], status.links.map {
            [ConsoleHTML.escape($0.a), ConsoleHTML.escape($0.b), String(format: "%.2f ms", $0.latencyMs)]
        }, caption: "Links up (\(status.links.count))")
        let circuits = ConsoleHTML.table(["circuit", "service", "dialer", "host", "path"], status.circuits.map {
            ["<a href=\"/console/mesh?circuit=\($0.id)\">\($0.id)</a>", ConsoleHTML.escape($0.service), ConsoleHTML.escape($0.dialer),
             ConsoleHTML.escape($0.host), ConsoleHTML.escape($0.path.joined(separator: " → "))]
        }, caption: "Circuits (\(status.circuits.count))")
        let note = chosen.map { id in path.isEmpty ? "<p>Circuit \(id) is not open.</p>" : "<p>Path of circuit \(id): \(ConsoleHTML.escape(path.joined(separator: " → ")))</p>" } ?? ""
        return ConsoleHTML.page("Mesh", section: "mesh", csrf: csrf(request), refreshSeconds: 5,
                                body: svg + note + routers + links + circuits)
    }

    // MARK: access

    private func applyAccessForm(_ form: [String: String]) throws -> String {
        func list(_ field: String) -> [String] {
            (form[field] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init).filter { !$0.isEmpty }
        }
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        switch form["action"] {
        case "create-identity":
            let record = try createIdentity(IdentitySpec(name: name, roles: list("roles")))
            return "Identity '\(record.name)' created; its enrollment token: \(record.enrollmentToken ?? "")"
        case "delete-identity":
            try deleteIdentity(name)
            return "Identity '\(name)' deleted"
        case "create-service-policy":
            guard let type = SessionType(rawValue: form["type"] ?? "") else { throw HTTPError(.badRequest, message: "type must be dial or bind") }
            try createServicePolicy(ServicePolicySpec(name: name, type: type, identityRoles: list("identities"), serviceRoles: list("services")))
            return "Service policy '\(name)' created"
        case "delete-service-policy":
            try deleteServicePolicy(name)
            return "Service policy '\(name)' deleted"
        default:
            throw HTTPError(.badRequest, message: "unknown action")
        }
    }

    private func accessPage(_ request: Request, notice: String?) throws -> String {
        let token = csrf(request)
        let snapshot = policies.snapshot
        let (identities, servicePolicies, services) = try store.read { db in
            (try db.all(IdentityRow.self, orderBy: "name"), try db.all(ServicePolicyRow.self, orderBy: "name"), try db.all(ServiceRow.self, orderBy: "name"))
        }
        func deleteButton(_ action: String, _ name: String) -> String {
            "<form class=\"inline\" method=\"post\" action=\"/console/access\">\(ConsoleHTML.hidden("csrf", token))\(ConsoleHTML.hidden("action", action))"
                + "\(ConsoleHTML.hidden("name", name))<button aria-label=\"delete \(ConsoleHTML.escape(name))\">Delete</button></form>"
        }
        let search = (request.uri.queryParameters.get("q") ?? "").lowercased()
        let shown = identities.filter { search.isEmpty || $0.name.lowercased().contains(search) || $0.roles.contains { $0.lowercased().contains(search) } }
        var body = notice ?? ""
        body += "<form method=\"get\" action=\"/console/access\"><label>Search identities <input name=\"q\" value=\"\(ConsoleHTML.escape(search))\"></label><button>Search</button></form>"
        body += ConsoleHTML.table(["identity", "roles", "enrolled", ""], shown.map {
            ["<a href=\"/console/access?identity=\(ConsoleHTML.escape($0.name))\">\(ConsoleHTML.escape($0.name))</a>",
             ConsoleHTML.escape($0.roles.joined(separator: ", ")), $0.enrolled ? "yes" : "no", deleteButton("delete-identity", $0.name)]
        }, caption: "Identities (\(shown.count) of \(identities.count))")
        body += """
        <form method="post" action="/console/access"><fieldset><legend>New identity</legend>\(ConsoleHTML.hidden("csrf", token))\(ConsoleHTML.hidden("action", "create-identity"))
        <label>Name <input name="name" required></label><label>Roles (comma-separated) <input name="roles"></label><button>Create identity</button></fieldset></form>
        """
        if let identity = request.uri.queryParameters.get("identity") {
            let grants = snapshot.grants(for: identity)
            body += ConsoleHTML.table(["service", "dial", "bind", "MCP tools it sees"], grants.map { grant in
                let tools = grant.canDial ? visibleTools(of: grant.name, to: identity) : nil
                return [ConsoleHTML.escape(grant.name), grant.canDial ? "yes" : "", grant.canBind ? "yes" : "",
                        tools.map { "<span class=\"tools\">\(ConsoleHTML.escape($0.joined(separator: ", ")))</span>" } ?? ""]
            }, caption: "What '\(identity)' can reach")
        }
        body += ConsoleHTML.table(["service policy", "type", "identities", "services", ""], servicePolicies.map {
            [ConsoleHTML.escape($0.name), $0.type.rawValue, ConsoleHTML.escape($0.identityRoles.joined(separator: ", ")),
             ConsoleHTML.escape($0.serviceRoles.joined(separator: ", ")), deleteButton("delete-service-policy", $0.name)]
        }, caption: "Service policies (\(servicePolicies.count))")
        body += """
        <form method="post" action="/console/access"><fieldset><legend>New service policy</legend>\(ConsoleHTML.hidden("csrf", token))\(ConsoleHTML.hidden("action", "create-service-policy"))
        <label>Name <input name="name" required></label>
        <label>Type <select name="type"><option value="dial">dial</option><option value="bind">bind</option></select></label>
        <label>Identities ('#attribute', '@name' or '#all') <input name="identities" required></label>
        <label>Services ('#attribute', '@name' or '#all') <input name="services" required></label><button>Create service policy</button></fieldset></form>
        """
        body += ConsoleHTML.table(["service", "roles", "who can dial it"], services.map {
            [ConsoleHTML.escape($0.name), ConsoleHTML.escape($0.roles.joined(separator: ", ")),
             ConsoleHTML.escape(snapshot.callers(of: $0.name).keys.sorted().joined(separator: ", "))]
        }, caption: "Services (\(services.count))")
        return ConsoleHTML.page("Access", section: "access", csrf: token, body: body)
    }

    /// The tools an MCP gateway hosting `service` shows `identity`: the tools it reported (and
    /// that are not waiting for re-approval), filtered by the service's `mcp-tools.v1` rules as the
    /// gateway applies them. Nil when the service has no such rules (it is no MCP gateway, or one
    /// that shows nothing). Tool names are the gateway's `server__tool`; a gateway configured with
    /// another separator or prefixes is matched on its names as they are.
    func visibleTools(of service: String, to identity: String) -> [String]? {
        let snapshot = policies.snapshot
        let configs = (snapshot.services[service]?.configs ?? []).compactMap { snapshot.configs[$0] }.filter { $0.type == MCPToolPolicy.configType }
        guard !configs.isEmpty else { return nil }
        var rules: [MCPToolPolicy.Rule] = []
        for config in configs {
            guard let policy = try? config.data.decode(MCPToolPolicy.self) else { return [] }  // unreadable: the gateway shows nothing
            rules += policy.rules
        }
        let grant = MCPToolPolicy(rules: rules).grant(for: identity, attributes: snapshot.allIdentityRoles[identity] ?? [])
        return pins.list(service: service).filter { $0.pendingHash == nil }.map(\.tool).filter { name in
            guard let split = name.range(of: "__") else { return grant.permits(.tool, server: "", item: name) }
            return grant.permits(.tool, server: String(name[..<split.lowerBound]), item: String(name[split.upperBound...]))
        }.sorted()
    }

    // MARK: audit

    private func auditPage(_ request: Request) throws -> String {
        let query = request.uri.queryParameters
        func value(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
        let formatter = ISO8601DateFormatter()
        let events = try audit.events(limit: 500, type: value("type"), identity: value("identity"), user: value("user"), service: value("service"),
                                      circuit: value("circuit").flatMap { UInt64($0) }, since: value("since").flatMap(formatter.date(from:)), until: value("until").flatMap(formatter.date(from:)))
        let chain = try audit.verifyChain()
        var body = chain.brokenAt == nil
            ? "<p class=\"ok\" role=\"status\">Audit trail intact: \(chain.rows) events, hash chain verified.</p>"
            : "<p class=\"error\" role=\"alert\">Audit trail broken at event \(chain.brokenAt ?? 0) of \(chain.rows).</p>"
        let field = { (name: String, label: String) in
            "<label>\(label) <input name=\"\(name)\" value=\"\(ConsoleHTML.escape(value(name) ?? ""))\"></label>"
        }
        body += "<form method=\"get\" action=\"/console/audit\"><fieldset><legend>Filter</legend>"
            + field("identity", "Identity") + field("user", "Person") + field("service", "Service") + field("type", "Type (e.g. mcp.request)")
            + field("since", "Since (ISO 8601)") + field("until", "Until (ISO 8601)") + "<button>Filter</button></fieldset></form>"
        body += ConsoleHTML.table(["#", "time", "type", "identity", "person", "service", "circuit", "detail"], events.reversed().map {
            ["\($0.seq)", formatter.string(from: $0.at), ConsoleHTML.escape($0.type), ConsoleHTML.escape($0.identity ?? ""), ConsoleHTML.escape($0.user ?? ""),
             ConsoleHTML.escape($0.service ?? ""), $0.circuit.map { "<a href=\"/console/audit?circuit=\($0)\">\($0)</a>" } ?? "",
             ConsoleHTML.escape(String($0.detail.prefix(400)))]
        }, caption: "Newest first (\(events.count) shown)")
        return ConsoleHTML.page("Audit", section: "audit", csrf: csrf(request), body: body)
    }

    // MARK: spend

    private func spendPage(_ request: Request) throws -> String {
        let by = request.uri.queryParameters.get("by") ?? "identity"
        guard ["identity", "team", "user", "project", "model", "provider"].contains(by) else {
            throw HTTPError(.badRequest, message: "by must be identity, team, user, project, model or provider")
        }
        let rows = try usage.report(by: by, since: nil, roles: policies.snapshot.allIdentityRoles)
        let top = rows.map(\.costUSD).max() ?? 0
        var svg = "<svg role=\"img\" aria-label=\"cost by \(by)\" width=\"640\" height=\"\(max(1, rows.count) * 26 + 10)\">"
        for (index, row) in rows.enumerated() {
            let width = top > 0 ? 400 * row.costUSD / top : 0
            svg += "<text x=\"0\" y=\"\(index * 26 + 20)\">\(ConsoleHTML.escape(String(row.key.prefix(24))))</text>"
            svg += "<rect class=\"bar\" x=\"180\" y=\"\(index * 26 + 6)\" width=\"\(width)\" height=\"18\"/>"
            svg += "<text x=\"\(186 + width)\" y=\"\(index * 26 + 20)\">\(String(format: "$%.6f", row.costUSD))</text>"
        }
        svg += "</svg>"
        let choices = ["identity", "team", "user", "project", "model", "provider"].map {
            $0 == by ? "<strong>\($0)</strong>" : "<a href=\"/console/spend?by=\($0)\">\($0)</a>"
        }.joined(separator: " · ")
        let table = ConsoleHTML.table([by, "requests", "input tokens", "output tokens", "cost (USD)"], rows.map {
            [ConsoleHTML.escape($0.key), "\($0.requests)", "\($0.inputTokens)", "\($0.outputTokens)", String(format: "%.6f", $0.costUSD)]
        }, caption: "LLM usage by \(by)")
        return ConsoleHTML.page("Spend", section: "spend", csrf: csrf(request), body: "<p>By: \(choices)</p>" + svg + table)
    }

    // MARK: approvals

    private func approvalsPage(_ request: Request, notice: String?) -> String {
        let token = csrf(request)
        let waiting = pins.list(service: nil).filter { $0.pendingHash != nil }
        let table = ConsoleHTML.table(["service", "tool", "approved definition", "changed to", ""], waiting.map { pin in
            [ConsoleHTML.escape(pin.service), ConsoleHTML.escape(pin.tool), "<code>\(ConsoleHTML.escape(String(pin.approvedHash.prefix(16))))</code>",
             "<code>\(ConsoleHTML.escape(String((pin.pendingHash ?? "").prefix(16))))</code>",
             "<form class=\"inline\" method=\"post\" action=\"/console/approvals\">\(ConsoleHTML.hidden("csrf", token))\(ConsoleHTML.hidden("service", pin.service))"
                + "\(ConsoleHTML.hidden("tool", pin.tool))<button>Approve</button></form>"]
        }, caption: "Tool definitions waiting for approval (\(waiting.count)); each stays hidden from agents until approved")
        return ConsoleHTML.page("Approvals", section: "approvals", csrf: token, body: (notice ?? "") + table)
    }
}

/// Sends a request without a valid console session to sign-in, and refuses a POST whose CSRF
/// token is missing or wrong.
struct ConsoleGuard<Context: RequestContext>: RouterMiddleware {
    let sessions: AdminSessions

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = ConsoleSession.token(of: request), sessions.isValid(token) else {
            return ConsoleSession.redirect("/console/login")
        }
        guard request.method == .post else { return try await next(request, context) }
        var request = request
        _ = try await request.collectBody(upTo: 64 * 1024)  // kept for the handler, which reads the form again
        let fields = try await ConsoleSession.form(request)
        guard fields["csrf"] == ConsoleSession.csrf(for: token) else {
            return ConsoleSession.html("<!doctype html><title>Refused</title><p>Refused: the form's CSRF token is missing or wrong. Reload the page and try again.</p>",
                                       status: .forbidden)
        }
        return try await next(request, context)
    }
}
