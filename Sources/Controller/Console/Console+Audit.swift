import Foundation
import Hummingbird
import Shared

/// The console's audit page: the trail, filtered, with its hash chain's state; each gateway
/// record linked to its circuit and its trace.
extension ManagementAPI {
    func auditPage(_ request: Request) throws -> String {
        let query = request.uri.queryParameters
        func value(_ name: String) -> String? { query.get(name).flatMap { $0.isEmpty ? nil : $0 } }
        let formatter = ISO8601DateFormatter()
        func date(_ name: String) throws -> Date? {
            guard let text = value(name) else { return nil }
            guard let date = formatter.date(from: text) else {
                throw HTTPError(.badRequest, message: "\(name) must be an ISO 8601 time such as 2026-11-25T17:00:00Z")
            }
            return date
        }
        let events = try audit.events(limit: 500, type: value("type"), identity: value("identity"), user: value("user"), service: value("service"),
                                      circuit: value("circuit").flatMap { UInt64($0) }, since: try date("since"), until: try date("until"),
                                      trace: try Self.traceID(value("trace")))
        let chain = try audit.verifyChain()
        var body = chain.brokenAt == nil
            ? "<p class=\"ok\" role=\"status\">Audit trail intact: \(chain.rows) events, hash chain verified.</p>"
            : "<p class=\"error\" role=\"alert\">Audit trail broken at event \(chain.brokenAt ?? 0) of \(chain.rows).</p>"
        let field = { (name: String, label: String) in
            "<label>\(label) <input name=\"\(name)\" value=\"\(ConsoleHTML.escape(value(name) ?? ""))\"></label>"
        }
        body += "<form method=\"get\" action=\"/console/audit\"><fieldset><legend>Filter</legend>"
            + field("identity", "Identity") + field("user", "Person") + field("service", "Service") + field("type", "Type (e.g. mcp.request)")
            + field("since", "Since (ISO 8601)") + field("until", "Until (ISO 8601)") + field("trace", "Trace id") + "<button>Filter</button></fieldset></form>"
        body += ConsoleHTML.table(["#", "time", "type", "identity", "person", "service", "circuit", "trace", "detail"], events.reversed().map { event in
            let trace = Self.traceID(inDetail: event.detail)
            return ["\(event.seq)", formatter.string(from: event.at), ConsoleHTML.escape(event.type), ConsoleHTML.escape(event.identity ?? ""),
                    ConsoleHTML.escape(event.user ?? ""), ConsoleHTML.escape(event.service ?? ""),
                    event.circuit.map { ConsoleHTML.link("/console/audit", ["circuit": "\($0)"], "\($0)") } ?? "",
                    trace.map { ConsoleHTML.link("/console/audit", ["trace": $0], String($0.prefix(8)) + "…") } ?? "",
                    ConsoleHTML.escape(String(event.detail.prefix(400)))]
        }, caption: "Newest first (\(events.count) shown)")
        return ConsoleHTML.page("Audit", section: "audit", csrf: csrf(request), body: body)
    }

    /// The trace id a gateway wrote into a record's detail, if any.
    static func traceID(inDetail detail: String) -> String? {
        guard detail.contains("traceId"), let value = try? JSONDecoder().decode(JSONValue.self, from: Data(detail.utf8)) else { return nil }
        return (try? traceID(value["traceId"]?.stringValue)) ?? nil
    }
}
