import Crypto
import Foundation
import Shared

/// AWS Signature Version 4 for a request with a JSON body (what Bedrock's runtime API needs).
struct SigV4: Sendable {
    let accessKey: String
    let secretKey: String
    let sessionToken: String?
    let region: String
    let service: String

    /// The headers to add: `x-amz-date`, `x-amz-content-sha256`, the security token when there
    /// is one, and `Authorization`. `path` is the request path as sent (already URI-encoded).
    func sign(method: String, host: String, path: String, query: String = "", body: Data, date: Date = Date(),
              signContentHash: Bool = true) -> [(String, String)] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let amzDate = formatter.string(from: date)
        let day = String(amzDate.prefix(8))
        let payloadHash = Self.hex(SHA256.hash(data: body))
        var headers: [(String, String)] = [("host", host), ("x-amz-date", amzDate)]
        if signContentHash { headers.append(("x-amz-content-sha256", payloadHash)) }
        if let sessionToken { headers.append(("x-amz-security-token", sessionToken)) }
        headers.sort { $0.0 < $1.0 }
        let signedHeaders = headers.map(\.0).joined(separator: ";")
        let canonicalHeaders = headers.map { "\($0.0):\($0.1.trimmingCharacters(in: .whitespaces))\n" }.joined()
        let canonicalPath = path.split(separator: "/", omittingEmptySubsequences: false).map { Self.encode(String($0)) }.joined(separator: "/")
        let canonicalRequest = [method, canonicalPath, query, canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8)))].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(secretKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return headers.filter { $0.0 != "host" } + [("Authorization", authorization)]
    }

    /// RFC 3986 encoding of a path segment, as SigV4 wants it (unreserved characters kept).
    static func encode(_ segment: String) -> String {
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return segment.addingPercentEncoding(withAllowedCharacters: unreserved) ?? segment
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 { Hex.encode(digest) }
}
