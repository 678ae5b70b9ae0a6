import Foundation

/// Resource URIs as policy sees them. Percent-encoded unreserved characters are decoded and dot
/// segments removed (RFC 3986 §6.2.2.2, §5.2.4), so `file:///docs/../secrets/keys` is checked —
/// and forwarded — as `file:///secrets/keys`, never as something under `/docs/`. A URI whose
/// path still walks upwards once fully decoded (`..%2Fsecrets`, `%2e%2e/`, a backslash) is
/// refused: the gateway does not guess what an upstream will decode.
enum ResourceURI {
    /// The normalized URI, or nil when it must be refused.
    static func normalized(_ uri: String) -> String? {
        guard !uri.isEmpty, !uri.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        guard let schemeEnd = uri.range(of: "://") else {
            return uri  // opaque (urn:…, mailto:…): no path to walk
        }
        let scheme = uri[..<schemeEnd.lowerBound]
        let rest = uri[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let afterAuthority = rest[authorityEnd...]
        let pathEnd = afterAuthority.firstIndex { $0 == "?" || $0 == "#" } ?? afterAuthority.endIndex
        let path = decodeUnreserved(String(afterAuthority[..<pathEnd]))
        let tail = afterAuthority[pathEnd...]
        let normalizedPath = removeDotSegments(path)
        let decoded = normalizedPath.removingPercentEncoding ?? normalizedPath
        if decoded.contains("\\") || decoded.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." || $0 == "." }) {
            return nil
        }
        return "\(scheme)://\(authority)\(normalizedPath)\(tail)"
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
    }

    /// `%2e` → `.`, `%41` → `A`; other escapes stay as they are.
    static func decodeUnreserved(_ path: String) -> String {
        var bytes = Array(path.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
               let value = UInt8(String(decoding: bytes[index + 1...index + 2], as: UTF8.self), radix: 16), isUnreserved(value) {
                out.append(value)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        bytes = out
        return String(decoding: bytes, as: UTF8.self)
    }

    /// RFC 3986 §5.2.4.
    static func removeDotSegments(_ path: String) -> String {
        var input = Substring(path)
        var output: [Substring] = []
        var trailingSlash = false
        let absolute = input.hasPrefix("/")
        let segments = input.split(separator: "/", omittingEmptySubsequences: false)
        input = ""
        for (position, segment) in segments.enumerated() {
            let last = position == segments.count - 1
            switch segment {
            case ".":
                trailingSlash = last
            case "..":
                if !output.isEmpty, !(output.count == 1 && output[0].isEmpty && absolute) { output.removeLast() }
                trailingSlash = last
            default:
                output.append(segment)
                trailingSlash = false
            }
        }
        var result = output.joined(separator: "/")
        if absolute, !result.hasPrefix("/") { result = "/" + result }
        if trailingSlash, !result.hasSuffix("/") { result += "/" }
        return result
    }
}
