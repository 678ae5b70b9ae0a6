import Foundation

/// Finds personal data and secrets in text: e-mail, phone, payment card (Luhn-checked), IBAN
/// (mod-97-checked), US SSN, IP address, API keys and private keys. Checksums keep ordinary
/// numbers from being mistaken for cards or IBANs.
enum PIIDetector {
    struct Finding: Equatable, Sendable {
        let type: String
        let range: Range<String.Index>
    }

    private static let patterns: [(String, NSRegularExpression)] = [
        ("email", #"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"#),
        ("api_key", #"\b(?:sk-(?:proj-)?[A-Za-z0-9_-]{20,}|sk-ant-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40,}|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b"#),
        ("private_key", #"-----BEGIN (?:RSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"#),
        ("iban", #"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"#),
        ("card", #"\b(?:[0-9][ -]?){12,18}[0-9]\b"#),
        ("ssn", #"\b(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}\b"#),
        ("ip_address", #"\b(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\b|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b"#),
        ("phone", #"(?<![\w-])(?:\+[1-9][0-9]{0,2}[ .-]?)?(?:\(?[0-9]{2,4}\)?[ .-]?){2,4}[0-9]{2,4}(?![\w-])"#),
    ].compactMap { name, pattern in (try? NSRegularExpression(pattern: pattern)).map { (name, $0) } }

    static let types = ["email", "phone", "card", "iban", "ssn", "ip_address", "api_key", "private_key"]

    static func findings(in text: String, types wanted: Set<String>? = nil) -> [Finding] {
        var found: [Finding] = []
        let whole = NSRange(text.startIndex..., in: text)
        let shape = TextShape(text)
        for (type, regex) in patterns where wanted?.contains(type) ?? true {
            guard shape.mayHold(type) else { continue }
            for match in regex.matches(in: text, range: whole) {
                guard let range = Range(match.range, in: text) else { continue }
                if found.contains(where: { $0.range.overlaps(range) }) { continue }
                let value = String(text[range])
                switch type {
                case "card": guard luhn(value) else { continue }
                case "iban": guard iban(value) else { continue }
                case "phone": guard value.filter(\.isNumber).count >= 9, value.contains(where: { " +-().".contains($0) }) else { continue }
                default: break
                }
                found.append(Finding(type: type, range: range))
            }
        }
        return found
    }

    /// What a pattern cannot match without, counted in one pass: most prompts hold no `@`
    /// and few digits, and then most patterns need not run at all.
    struct TextShape {
        var digits = 0
        var at = false
        var dash = false
        var dot = false
        var colons = 0

        init(_ text: String) {
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
                case UInt8(ascii: "@"): at = true
                case UInt8(ascii: "-"): dash = true
                case UInt8(ascii: "."): dot = true
                case UInt8(ascii: ":"): colons += 1
                default: break
                }
            }
        }

        /// False only when `type`'s pattern cannot match (a necessary condition, never a guess).
        /// Only ASCII digits are counted, and no pattern's `[0-9]` matches another digit.
        func mayHold(_ type: String) -> Bool {
            switch type {
            case "email": return at
            case "private_key": return dash
            case "card": return digits >= 13
            case "iban": return digits >= 2
            case "ssn": return digits >= 9 && dash
            case "ip_address": return digits >= 4 && dot || colons >= 7
            case "phone": return digits >= 9
            default: return true
            }
        }
    }

    /// `text` with each finding replaced by `[REDACTED:type]`.
    static func redact(_ text: String, types: Set<String>? = nil) -> String {
        var result = text
        for finding in findings(in: text, types: types).sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
            result.replaceSubrange(finding.range, with: "[REDACTED:\(finding.type)]")
        }
        return result
    }

    static func luhn(_ candidate: String) -> Bool {
        let digits = candidate.compactMap(\.wholeNumberValue)
        guard (13...19).contains(digits.count) else { return false }
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            if offset % 2 == 1 { sum += digit * 2 > 9 ? digit * 2 - 9 : digit * 2 } else { sum += digit }
        }
        return sum % 10 == 0
    }

    static func iban(_ candidate: String) -> Bool {
        let compact = candidate.replacingOccurrences(of: " ", with: "").uppercased()
        guard (15...34).contains(compact.count) else { return false }
        let rearranged = compact.dropFirst(4) + compact.prefix(4)
        var remainder = 0
        for character in rearranged {
            guard let value = character.isNumber ? character.wholeNumberValue : (character.asciiValue.map { Int($0) - 55 }) else { return false }
            for digit in String(value) { remainder = (remainder * 10 + (digit.wholeNumberValue ?? 0)) % 97 }
        }
        return remainder == 1
    }
}
