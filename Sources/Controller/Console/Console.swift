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
        console.get("console.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=3600", .xContentTypeOptions: "nosniff"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsoleScript.source)))
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
        pages.get("events/mesh") { request, _ in meshEvents(request) }
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

    static func reason(_ error: Error) -> String {
        if let error = error as? HTTPError { return error.body ?? "\(error.status)" }
        return "\(error)"
    }

    func csrf(_ request: Request) -> String { ConsoleSession.token(of: request).map(ConsoleSession.csrf(for:)) ?? "" }

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
