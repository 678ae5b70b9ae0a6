import Foundation
import Hummingbird
import Shared

/// The console's mesh page: routers and links as a graph with their latency, circuits per router,
/// a chosen circuit's path — kept live by server-sent events (`/console/events/mesh`), or, in a
/// browser without scripts, by reloading.
extension ManagementAPI {
    static let meshRefresh: Duration = .seconds(3)
    static let meshStreamLifetime: Duration = .seconds(30)
    static let meshCircuitRows = 500

    func meshPage(_ request: Request) async throws -> String {
        let chosen = request.uri.queryParameters.get("circuit").flatMap { UInt64($0) }
        let live = "/console/events/mesh" + (chosen.map { "?circuit=\($0)" } ?? "")
        let body = "<div id=\"mesh-live\" data-live=\"\(ConsoleHTML.escape(live))\" data-event=\"mesh\" aria-live=\"polite\">"
            + (try await meshFragment(chosen: chosen)) + "</div>"
        return ConsoleHTML.page("Mesh", section: "mesh", csrf: csrf(request), refreshSeconds: 5, liveScript: true, body: body)
    }

    /// The mesh as it is now, each time it changes (and at least every few seconds: its clock), as
    /// `mesh` events; until the session ends or the browser goes.
    func meshEvents(_ request: Request) -> Response {
        let token = ConsoleSession.token(of: request) ?? ""
        let chosen = request.uri.queryParameters.get("circuit").flatMap { UInt64($0) }
        let admins = self.admins
        var headers = ConsoleSession.headers([.cacheControl: "no-store"])
        headers[.contentType] = "text/event-stream"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            // A stream lasts a little while, then the browser reconnects: a controller stopping
            // never waits long for an open console tab.
            try await writer.write(ByteBuffer(string: "retry: 500\n\n"))
            let ends = ContinuousClock.now + Self.meshStreamLifetime
            while !Task.isCancelled, admins.isValid(token), ContinuousClock.now < ends {
                let fragment = try await meshFragment(chosen: chosen)
                let event = "event: mesh\n" + fragment.split(separator: "\n", omittingEmptySubsequences: false).map { "data: \($0)\n" }.joined() + "\n"
                try await writer.write(ByteBuffer(string: event))
                try await Task.sleep(for: Self.meshRefresh)
            }
            try await writer.finish(nil)
        })
    }

    private func meshFragment(chosen: UInt64?) async throws -> String {
        let status = try await networkStatus()
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
        let circuits = ConsoleHTML.table(["circuit", "service", "dialer", "host", "path"], status.circuits.prefix(Self.meshCircuitRows).map {
            ["<a href=\"/console/mesh?circuit=\($0.id)\">\($0.id)</a>", ConsoleHTML.escape($0.service), ConsoleHTML.escape($0.dialer),
             ConsoleHTML.escape($0.host), ConsoleHTML.escape($0.path.joined(separator: " → "))]
        }, caption: status.circuits.count > Self.meshCircuitRows ? "Circuits (\(Self.meshCircuitRows) of \(status.circuits.count))" : "Circuits (\(status.circuits.count))")
        let note = chosen.map { id in path.isEmpty ? "<p>Circuit \(id) is not open.</p>" : "<p>Path of circuit \(id): \(ConsoleHTML.escape(path.joined(separator: " → ")))</p>" } ?? ""
        let clock = DateFormatter()
        clock.dateFormat = "HH:mm:ss"
        clock.timeZone = TimeZone(identifier: "UTC")
        return "<p class=\"note\">As of <time class=\"as-of\">\(clock.string(from: Date())) UTC</time>.</p>" + svg + note + routers + links + circuits
    }
}
