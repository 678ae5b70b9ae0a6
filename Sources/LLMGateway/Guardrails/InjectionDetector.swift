import Foundation

/// Prompt-injection detection: phrasing heuristics, then embedding similarity to a corpus of
/// known injection prompts shipped with the project (`InjectionCorpus`).
enum InjectionDetector {
    struct Verdict: Equatable, Sendable {
        let score: Double
        let reason: String
    }

    private static let heuristics: [(NSRegularExpression, String)] = [
        (#"\b(ignore|disregard|forget)\b.{0,40}\b(previous|prior|above|earlier|all)\b.{0,20}\b(instructions?|rules|prompts?|directions)\b"#, "asks to ignore previous instructions"),
        (#"\b(reveal|print|show|repeat|output)\b.{0,40}\b(system prompt|hidden instructions|your instructions|initial prompt)\b"#, "asks for the system prompt"),
        (#"\byou are now\b.{0,40}\b(dan|jailbroken|unrestricted|developer mode|no longer bound)\b"#, "role-play jailbreak"),
        (#"\b(developer|god|sudo|admin) mode\b"#, "asks for a privileged mode"),
        (#"<\|?(im_start|system|endoftext)\|?>|\[/?INST\]|###\s*(system|instruction)"#, "smuggled chat-template tokens"),
        (#"\b(exfiltrate|send|post|upload)\b.{0,60}\b(credentials|secrets|api keys?|passwords?)\b.{0,40}\b(to|at)\b"#, "asks to exfiltrate secrets"),
    ].compactMap { pattern, reason in (try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive, .dotMatchesLineSeparators])).map { ($0, reason) } }

    private static let corpusVectors: [[Float]] = InjectionCorpus.prompts.map(Embedder.embed)

    static func verdict(for text: String) -> Verdict {
        let range = NSRange(text.startIndex..., in: text)
        for (regex, reason) in heuristics where regex.firstMatch(in: text, range: range) != nil {
            return Verdict(score: 1, reason: reason)
        }
        let vector = Embedder.embed(text)
        var best: Float = 0
        for known in corpusVectors { best = max(best, Embedder.cosine(vector, known)) }
        return Verdict(score: Double(best), reason: "similarity \(String(format: "%.2f", best)) to known injection prompts")
    }
}
