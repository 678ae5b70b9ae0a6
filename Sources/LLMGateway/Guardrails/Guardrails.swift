import Foundation
import GatewayKit
import Shared

/// Applies an LLM policy's guardrails to a request before any provider sees it.
enum Guardrails {
    struct Outcome: Sendable {
        var request: JSONValue
        /// PII found (whatever the action): the request may only go to private providers
        /// when the action is `private`.
        var privateOnly = false
        var piiTypes: [String] = []
        var verdicts: [String] = []
        /// Set when the request must not go anywhere: the caller gets this message.
        var blocked: String?
    }

    static let defaultInjectionThreshold = 0.75

    static func apply(_ policy: LLMPolicy.Guardrails?, to request: JSONValue) -> Outcome {
        var outcome = Outcome(request: request)
        let text = GuardedText.of(request)

        for topic in policy?.topics?.deny ?? [] where Self.mentions(text, topic) {
            outcome.verdicts.append("topic '\(topic)': blocked")
            outcome.blocked = "this request touches the topic '\(topic)', which this gateway's policy does not allow; rephrase it without that topic"
            return outcome
        }

        let wanted = policy?.pii?.types.map(Set.init)
        let findings = PIIDetector.findings(in: text, types: wanted)
        if !findings.isEmpty {
            let types = Array(Set(findings.map(\.type))).sorted()
            outcome.piiTypes = types
            let action = policy?.pii?.action ?? "private"
            outcome.verdicts.append("pii \(types.joined(separator: ",")): \(action)")
            switch action {
            case "block":
                outcome.blocked = "this request contains personal data or secrets (\(types.joined(separator: ", "))); this gateway's policy blocks it — remove them and retry"
                return outcome
            case "redact":
                outcome.request = GuardedText.redacted(request, types: wanted)
            default:
                outcome.privateOnly = true
            }
        }

        let verdict = InjectionDetector.verdict(for: text)
        let threshold = policy?.injection?.threshold ?? defaultInjectionThreshold
        if verdict.score >= threshold {
            let action = policy?.injection?.action ?? "flag"
            outcome.verdicts.append("injection (\(verdict.reason)): \(action)")
            if action == "block" {
                outcome.blocked = "this request looks like a prompt injection (\(verdict.reason)); this gateway's policy blocks it"
            }
        }
        return outcome
    }

    static func mentions(_ text: String, _ topic: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: "\\b" + NSRegularExpression.escapedPattern(for: topic) + "\\b", options: .caseInsensitive) else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
