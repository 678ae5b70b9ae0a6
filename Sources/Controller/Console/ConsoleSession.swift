import Crypto
import Foundation
import Hummingbird
import Shared

/// The console's sign-in: the admin login of the management API, kept in a cookie the page's
/// scripts cannot read (there are none anyway) and the browser sends to this controller only
/// (`Secure; HttpOnly; SameSite=Strict`). Every change is a form that carries a CSRF token
/// derived from that cookie, which another site can neither read nor compute.
enum ConsoleSession {
    static let cookie = "portless_console"

    static func csrf(for token: String) -> String {
        Hex.encode(SHA256.hash(data: Data("portless-console-csrf\u{1F}\(token)".utf8)))
    }

    static func token(of request: Request) -> String? {
        request.cookies[cookie]?.value
    }

    static func setCookie(_ token: String, lifetime: TimeInterval) -> String {
        "\(cookie)=\(token); Path=/console; Max-Age=\(Int(lifetime)); Secure; HttpOnly; SameSite=Strict"
    }

    static let clearCookie = "\(cookie)=; Path=/console; Max-Age=0; Secure; HttpOnly; SameSite=Strict"

    /// What every console response carries: nothing but this origin's stylesheet, script (one
    /// file, `console.js`: no inline script, no eval), forms, images and event streams; no
    /// framing, nothing cached.
    static func headers(_ extra: HTTPFields = [:]) -> HTTPFields {
        var fields: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .contentSecurityPolicy: "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .xContentTypeOptions: "nosniff",
            .cacheControl: "no-store",
        ]
        if let referrer = HTTPFields.Element.Name("Referrer-Policy") { fields[referrer] = "no-referrer" }
        fields.append(contentsOf: extra)
        return fields
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        Response(status: status, headers: headers(extra), body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String, headers extra: HTTPFields = [:]) -> Response {
        var fields = headers(extra)
        fields[.location] = location
        return Response(status: .seeOther, headers: fields)
    }

    /// The form fields of a POST (application/x-www-form-urlencoded, at most 64 KiB).
    static func form(_ request: Request) async throws -> [String: String] {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        var fields: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            guard let name = parts.first, !name.isEmpty else { continue }
            fields[name] = parts.count > 1 ? parts[1] : ""
        }
        return fields
    }
}
