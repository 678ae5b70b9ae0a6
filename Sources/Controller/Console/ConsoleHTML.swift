import Foundation
import Shared

/// Server-rendered pages: every value that came from outside goes through `escape`. The one script
/// (`ConsoleScript`) only swaps in fragments the server rendered the same way.
enum ConsoleHTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    static let sections: [(path: String, title: String)] = [
        ("mesh", "Mesh"), ("access", "Access"), ("audit", "Audit"), ("spend", "Spend"), ("approvals", "Approvals"),
    ]

    /// A page of the console: navigation, the sign-out form (with its CSRF token), the body.
    /// `refreshSeconds` reloads the page — in a browser without scripts only, when `liveScript`
    /// keeps its `data-live` parts current instead.
    static func page(_ title: String, section: String, csrf: String, refreshSeconds: Int? = nil, liveScript: Bool = false, body: String) -> String {
        let nav = sections.map { item in
            item.path == section ? "<a href=\"/console/\(item.path)\" aria-current=\"page\">\(item.title)</a>"
                                 : "<a href=\"/console/\(item.path)\">\(item.title)</a>"
        }.joined()
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        \(refreshSeconds.map { liveScript ? "<noscript><meta http-equiv=\"refresh\" content=\"\($0)\"></noscript>" : "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? "")
        \(liveScript ? "<script src=\"/console/console.js\" defer></script>" : "")
        <title>\(escape(title)) · Portless</title><link rel="stylesheet" href="/console/console.css"></head>
        <body><header><strong>Portless</strong><nav aria-label="sections">\(nav)</nav>
        <form method="post" action="/console/logout"><input type="hidden" name="csrf" value="\(escape(csrf))"><button>Sign out</button></form></header>
        <main><h1>\(escape(title))</h1>
        \(body)
        </main></body></html>
        """
    }

    static func signIn(error: String? = nil) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Sign in · Portless</title><link rel="stylesheet" href="/console/console.css"></head>
        <body><main class="narrow"><h1>Portless console</h1>
        \(error.map { "<p role=\"alert\" class=\"error\">\(escape($0))</p>" } ?? "")
        <form method="post" action="/console/login">
        <label>Username <input name="username" autocomplete="username" value="admin" required></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
        <button>Sign in</button></form>
        <p>The admin credential is in the controller's state directory (<code>admin.json</code>).</p></main></body></html>
        """
    }

    static func table(_ headers: [String], _ rows: [[String]], caption: String? = nil) -> String {
        let head = headers.map { "<th scope=\"col\">\(escape($0))</th>" }.joined()
        let body = rows.map { "<tr>" + $0.map { "<td>\($0)</td>" }.joined() + "</tr>" }.joined(separator: "\n")
        return "<table>\(caption.map { "<caption>\(escape($0))</caption>" } ?? "")<thead><tr>\(head)</tr></thead><tbody>\(body)</tbody></table>"
    }

    /// A link to `path` with a query; the text escaped.
    static func link(_ path: String, _ query: KeyValuePairs<String, String>, _ text: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#/:;")
        let encoded = query.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
        return "<a href=\"\(escape(path + (encoded.isEmpty ? "" : "?" + encoded)))\">\(escape(text))</a>"
    }

    /// JSON indented with sorted keys, one value per line: for reading, editing and diffing.
    static func readableJSON(_ value: JSONValue) -> String {
        (try? readableEncoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    private static let readableEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func hidden(_ name: String, _ value: String) -> String {
        "<input type=\"hidden\" name=\"\(escape(name))\" value=\"\(escape(value))\">"
    }

    static let style = """
    :root { font-family: system-ui, sans-serif; color: #1b1f24; background: #fafbfc; }
    header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #1b2733; color: #fff; }
    header nav { display: flex; gap: 1rem; flex: 1; }
    header a { color: #c9d7e3; text-decoration: none; } header a[aria-current] { color: #fff; font-weight: 600; }
    main { padding: 1rem 1.5rem; max-width: 80rem; } main.narrow { max-width: 26rem; margin: 4rem auto; }
    table { border-collapse: collapse; margin: .5rem 0 1.5rem; width: 100%; }
    th, td { border-bottom: 1px solid #dde3e9; padding: .3rem .5rem; text-align: left; vertical-align: top; font-size: .92rem; }
    caption { text-align: left; font-weight: 600; padding: .3rem 0; }
    form.inline { display: inline; } label { display: block; margin: .4rem 0; }
    fieldset { border: 1px solid #dde3e9; margin: .5rem 0 1rem; } .error { color: #a4001b; font-weight: 600; }
    .ok { color: #116329; font-weight: 600; } svg text { font-size: 12px; } code { font-size: .85rem; }
    .bar { fill: #3b7dd8; } .link { stroke: #8796a5; stroke-width: 2; } .path { stroke: #d2691e; stroke-width: 5; }
    pre.diff { background: #f6f8fa; padding: .5rem; overflow-x: auto; } pre.diff del { background: #ffebe9; text-decoration: none; display: block; }
    pre.diff ins { background: #dafbe1; text-decoration: none; display: block; } pre.diff span { display: block; }
    .series-0 { fill: #3b7dd8; background: #3b7dd8; } .series-1 { fill: #d2691e; background: #d2691e; } .series-2 { fill: #2e8b57; background: #2e8b57; }
    .series-3 { fill: #8a4fbf; background: #8a4fbf; } .series-4 { fill: #c0392b; background: #c0392b; } .series-5 { fill: #b8860b; background: #b8860b; }
    .series-6 { fill: #8796a5; background: #8796a5; } .axis { stroke: #8796a5; } meter { width: 8rem; }
    ul.legend { display: flex; gap: 1rem; list-style: none; padding: 0; } .swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; }
    nav.sub { display: flex; gap: 1rem; margin: .5rem 0 1rem; } .note { color: #57606a; font-size: .9rem; }
    form.inline input { width: 11rem; margin-right: .3rem; } section { margin-bottom: 1.5rem; }
    .router { fill: #1b2733; } .router-label { fill: #1b2733; font-weight: 600; }
    """
}
