import Foundation
import Shared

/// One call's tokens as the provider counted them — or, when it gave no count, as estimated
/// (`estimated`): all input (cached and cache-written included) and all output (reasoning
/// included), with the parts that have their own prices.
struct TokenUsage: Sendable, Equatable {
    var input = 0
    var output = 0
    var cachedInput = 0
    var cacheWrite = 0
    var reasoning = 0
    var estimated = false

    init(input: Int = 0, output: Int = 0, cachedInput: Int = 0, cacheWrite: Int = 0, reasoning: Int = 0, estimated: Bool = false) {
        self.input = input; self.output = output; self.cachedInput = cachedInput; self.cacheWrite = cacheWrite
        self.reasoning = reasoning; self.estimated = estimated
    }

    /// From the OpenAI usage object every adapter returns; nil when there is none.
    init?(openAI usage: JSONValue?) {
        guard let usage, usage != .null, usage["prompt_tokens"] != nil || usage["completion_tokens"] != nil else { return nil }
        input = usage["prompt_tokens"].count()
        output = usage["completion_tokens"].count()
        cachedInput = usage["prompt_tokens_details"]?["cached_tokens"].count() ?? 0
        cacheWrite = usage["prompt_tokens_details"]?["cache_write_tokens"].count() ?? 0
        reasoning = usage["completion_tokens_details"]?["reasoning_tokens"].count() ?? 0
    }

    /// From Anthropic's usage, where `input_tokens` leaves out cache reads and writes.
    init(anthropic usage: JSONValue?) {
        cachedInput = usage?["cache_read_input_tokens"].count() ?? 0
        cacheWrite = usage?["cache_creation_input_tokens"].count() ?? 0
        input = (usage?["input_tokens"].count() ?? 0) + cachedInput + cacheWrite
        output = usage?["output_tokens"].count() ?? 0
    }

    /// An estimate for a call the provider did not count.
    static func estimate(request: JSONValue, output: String) -> TokenUsage {
        TokenUsage(input: TokenEstimator.count(request: request), output: TokenEstimator.count(output), estimated: true)
    }

    /// Back in OpenAI's shape (with the cache and reasoning details).
    var openAI: JSONValue {
        .object(["prompt_tokens": .number(input), "completion_tokens": .number(output), "total_tokens": .number(input + output),
                 "prompt_tokens_details": .object(["cached_tokens": .number(cachedInput), "cache_write_tokens": .number(cacheWrite)]),
                 "completion_tokens_details": .object(["reasoning_tokens": .number(reasoning)])])
    }
}

extension ModelConfig {
    /// Whether the configuration gives this model a price at all; an unpriced model's usage is
    /// reported as unpriced, never as $0.
    var isPriced: Bool { inputPerMTok != nil || outputPerMTok != nil }

    /// Cached input, cache writes and reasoning at their own prices when set (else at the plain
    /// input or output price); the rest of input and output at theirs.
    func cost(_ usage: TokenUsage) -> Double {
        let input = inputPerMTok ?? 0, output = outputPerMTok ?? 0
        let plainInput = max(0, usage.input - usage.cachedInput - usage.cacheWrite)
        let plainOutput = max(0, usage.output - usage.reasoning)
        let total = Double(plainInput) * input + Double(usage.cachedInput) * (cachedInputPerMTok ?? input)
            + Double(usage.cacheWrite) * (cacheWritePerMTok ?? input) + Double(plainOutput) * output
            + Double(usage.reasoning) * (reasoningPerMTok ?? output)
        return total / 1_000_000
    }
}
