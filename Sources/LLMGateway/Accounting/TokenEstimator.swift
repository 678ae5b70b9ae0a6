import Foundation
import Shared

/// Token counts when a provider gives none (a stream cut before its usage, an Ollama model
/// without counts, `count_tokens` for a model that is not Anthropic's): an estimate shaped like a
/// byte-pair tokenizer's (cl100k/o200k): a word of up to eight letters is one token with its
/// leading space, a longer one about one per six letters; digits go in threes; each punctuation mark or symbol is a token; ideographs
/// and kana are about one each; a run of blank lines is one. Records built on it are marked
/// `estimated`.
enum TokenEstimator {
    static func count(_ text: String) -> Int {
        var tokens = 0
        var run = 0
        var kind: Character = " "
        func flush() {
            switch kind {
            case "a": tokens += run <= 8 ? 1 : (run + 5) / 6
            case "9": tokens += (run + 2) / 3
            case "\n": tokens += 1
            default: break
            }
            run = 0
        }
        for scalar in text.unicodeScalars {
            let value = scalar.value
            let next: Character
            if (0x4E00...0x9FFF).contains(value) || (0x3040...0x30FF).contains(value) || (0xAC00...0xD7AF).contains(value) {
                flush(); kind = " "
                tokens += 1
                continue
            } else if scalar.properties.isAlphabetic {
                next = "a"
            } else if ("0"..."9").contains(scalar) {
                next = "9"
            } else if scalar == "\n" {
                next = "\n"
            } else if scalar.properties.isWhitespace {
                if kind != " " { flush() }
                kind = " "
                continue
            } else {
                flush(); kind = " "
                tokens += 1
                continue
            }
            if next != kind { flush(); kind = next }
            run += 1
        }
        flush()
        return tokens
    }

    /// A chat request's input: every message's text and tool calls, tool definitions, and the
    /// few tokens of framing each message costs.
    static func count(request: JSONValue) -> Int {
        var total = 3
        for message in request["messages"]?.arrayValue ?? [] {
            total += 4 + count(ChatText.content(message))
            for call in message["tool_calls"]?.arrayValue ?? [] {
                total += count(call["function"]?["name"]?.stringValue ?? "") + count(call["function"]?["arguments"]?.stringValue ?? "")
            }
            if let content = message["content"]?.arrayValue {
                total += content.filter { $0["type"]?.stringValue == "image_url" }.count * 765
            }
        }
        for tool in request["tools"]?.arrayValue ?? [] { total += count(String(decoding: tool.encoded(), as: UTF8.self)) }
        return total
    }
}
