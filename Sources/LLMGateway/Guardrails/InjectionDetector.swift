import Foundation

/// Prompt-injection detection: phrasing heuristics, then embedding similarity to a corpus of
/// known injection prompts shipped with the project (`InjectionCorpus`).
enum InjectionDetector {
    struct Verdict: Equatable, Sendable {
        let score: Double
        /// The heuristic that matched; nil when the score is the similarity to the corpus.
        let heuristic: String?

        var reason: String { heuristic ?? "similarity \(String(format: "%.2f", score)) to known injection prompts" }
    }

    /// Each phrasing heuristic with the words one of which it cannot match without (ASCII,
    /// lowercase): on ASCII text a regex runs only when one of them is there.
    private static let heuristics: [(regex: NSRegularExpression, reason: String, needs: [[UInt8]])] = [
        (#"\b(ignore|disregard|forget)\b.{0,40}\b(previous|prior|above|earlier|all)\b.{0,20}\b(instructions?|rules|prompts?|directions)\b"#, "asks to ignore previous instructions",
         ["ignore", "disregard", "forget"]),
        (#"\b(reveal|print|show|repeat|output)\b.{0,40}\b(system prompt|hidden instructions|your instructions|initial prompt)\b"#, "asks for the system prompt",
         ["reveal", "print", "show", "repeat", "output"]),
        (#"\byou are now\b.{0,40}\b(dan|jailbroken|unrestricted|developer mode|no longer bound)\b"#, "role-play jailbreak", ["you are now"]),
        (#"\b(developer|god|sudo|admin) mode\b"#, "asks for a privileged mode", [" mode"]),
        (#"<\|?(im_start|system|endoftext)\|?>|\[/?INST\]|###\s*(system|instruction)"#, "smuggled chat-template tokens", ["<", "[", "###"]),
        (#"\b(exfiltrate|send|post|upload)\b.{0,60}\b(credentials|secrets|api keys?|passwords?)\b.{0,40}\b(to|at)\b"#, "asks to exfiltrate secrets",
         ["exfiltrate", "send", "post", "upload"]),
    ].compactMap { pattern, reason, needs in
        (try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive, .dotMatchesLineSeparators])).map { ($0, reason, needs.map { Array($0.utf8) }) }
    }

    /// The corpus's embeddings, unit length, one after another.
    private static let corpus: [Float] = InjectionCorpus.prompts.flatMap(Embedder.embed)

    static func verdict(for text: String) -> Verdict {
        // Case-insensitive matching folds some non-ASCII letters onto ASCII ones (ſ onto s):
        // only ASCII text may skip a regex whose words are absent.
        let lowered: [UInt8]? = text.utf8.allSatisfy { $0 < 0x80 } ? text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 } : nil
        for heuristic in heuristics {
            if let lowered, !heuristic.needs.contains(where: { Self.occurs($0, in: lowered) }) { continue }
            if heuristic.regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil { return Verdict(score: 1, heuristic: heuristic.reason) }
        }
        return Verdict(score: Double(Embedder.nearest(Embedder.embed(text), among: corpus)), heuristic: nil)
    }

    static func occurs(_ needle: [UInt8], in haystack: [UInt8]) -> Bool {
        guard let first = needle.first, needle.count <= haystack.count else { return needle.isEmpty }
        var start = 0
        while let found = haystack[start...].firstIndex(of: first), found + needle.count <= haystack.count {
            if haystack[found..<(found + needle.count)].elementsEqual(needle) { return true }
            start = found + 1
        }
        return false
    }
}
