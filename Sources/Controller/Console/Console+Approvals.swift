import Foundation
import Hummingbird
import Shared

/// The console's approvals page: tool definitions waiting for an operator, with what changed
/// between the approved definition and the new one.
extension ManagementAPI {
    func approvalsPage(_ request: Request, notice: String?) -> String {
        let token = csrf(request)
        let waiting = pins.list(service: nil).filter { $0.pendingHash != nil }
        var body = notice ?? ""
        body += "<p>\(waiting.count) tool definition(s) changed and wait for approval; each stays hidden from agents until approved "
            + "(<code>portless mcp approve SERVICE TOOL</code> does the same).</p>"
        for pin in waiting {
            body += "<section class=\"approval\" aria-label=\"\(ConsoleHTML.escape(pin.tool)) of \(ConsoleHTML.escape(pin.service))\">"
            body += "<h2>\(ConsoleHTML.escape(pin.tool)) <small>on \(ConsoleHTML.escape(pin.service))</small></h2>"
            body += "<p>Approved <code>\(ConsoleHTML.escape(String(pin.approvedHash.prefix(16))))</code>, now "
                + "<code>\(ConsoleHTML.escape(String((pin.pendingHash ?? "").prefix(16))))</code></p>"
            if let old = pin.approvedDefinition, let new = pin.pendingDefinition {
                body += "<pre class=\"diff\" aria-label=\"changes\">" + LineDiff.diff(Self.readable(old), Self.readable(new)).map { line in
                    switch line {
                    case .same(let text): return "<span>  \(ConsoleHTML.escape(text))</span>"
                    case .removed(let text): return "<del>- \(ConsoleHTML.escape(text))</del>"
                    case .added(let text): return "<ins>+ \(ConsoleHTML.escape(text))</ins>"
                    }
                }.joined() + "</pre>"
            } else {
                body += "<p class=\"note\">The gateway did not report the definitions behind these hashes (pinned by an earlier version, or too large).</p>"
            }
            body += "<form method=\"post\" action=\"/console/approvals\">\(ConsoleHTML.hidden("csrf", token))\(ConsoleHTML.hidden("service", pin.service))"
                + "\(ConsoleHTML.hidden("tool", pin.tool))<button>Approve \(ConsoleHTML.escape(pin.tool))</button></form></section>"
        }
        return ConsoleHTML.page("Approvals", section: "approvals", csrf: token, body: body)
    }

    /// A definition as indented JSON with sorted keys, one value per line, so a diff shows what changed.
    static func readable(_ definition: String) -> String {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(definition.utf8)) else { return definition }
        return ConsoleHTML.readableJSON(value)
    }
}
