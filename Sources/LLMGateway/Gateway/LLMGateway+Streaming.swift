import Foundation
import GatewayKit
import Shared

// Streamed answers: a provider's stream relayed chunk by chunk, accounted when it ends.
extension LLMGateway {
    func stream(_ request: JSONValue, decision: RoutingCascade.Decision, headers: [(String, String)], keys: [String], native: NativeMessages?,
                        record: AuditRecord) async -> ChatReply {
        let deadline = Duration.milliseconds(config.timeoutMs ?? 60_000)
        let wantsUsage = request["stream_options"]?["include_usage"]?.boolValue == true
        var failures: [String] = []
        var unsupported: [String] = []
        var record = record
        let started = ContinuousClock.now
        for name in decision.models {
            guard let (model, provider) = catalog[name], let adapter = adapters[provider.name], available(provider.name) else { continue }
            let passThrough = native != nil && provider.type == .anthropic
            if !passThrough, let why = adapter.unsupported(request, model: model) { unsupported.append("\(name): \(why)"); continue }
            guard breaker.allows(provider.name) else { failures.append("\(name): breaker open"); continue }
            for attempt in 0...(config.retries ?? 2) {
                if attempt > 0 { try? await Task.sleep(for: .milliseconds(100 << (attempt - 1))) }
                do {
                    if passThrough, let native, let anthropic = adapter as? AnthropicAdapter {
                        let events = try await anthropic.passThroughStream(native, model: model, deadline: deadline)
                        breaker.succeeded(provider.name)
                        record.failures = failures
                        return .nativeStream(relay(events, name: name, request: request, model: model, provider: provider, keys: keys, record: record,
                                                   started: started), headers: headers + [("x-portless-model", name)])
                    }
                    let upstream = try await adapter.stream(request, model: model, deadline: deadline)
                    var iterator = upstream.makeAsyncIterator()
                    // Fallback is possible only until the first chunk: after it, the caller has bytes.
                    guard let first = try await iterator.next() else { throw ProviderError.malformed("empty stream") }
                    breaker.succeeded(provider.name)
                    record.failures = failures
                    let (output, continuation) = AsyncThrowingStream<JSONValue, Error>.makeStream()
                    let finalRecord = record
                    let pump = Task { [weak self] in
                        var record = finalRecord
                        var usage: TokenUsage?
                        var streamed = ""
                        var next: JSONValue? = first
                        do {
                            while let chunk = next {
                                if let reported = TokenUsage(openAI: chunk["usage"]) { usage = reported }
                                for choice in chunk["choices"]?.arrayValue ?? [] {
                                    streamed += choice["delta"]?["content"]?.stringValue ?? ""
                                    for call in choice["delta"]?["tool_calls"]?.arrayValue ?? [] { streamed += call["function"]?["arguments"]?.stringValue ?? "" }
                                }
                                let isUsageOnly = chunk["choices"]?.arrayValue?.isEmpty == true
                                if !isUsageOnly || wantsUsage { continuation.yield(chunk.setting("model", .string(name))) }
                                next = try await iterator.next()
                            }
                            continuation.finish()
                        } catch {
                            record.failures.append("\(name): stream broke after it started: \(error)")
                            continuation.finish(throwing: error)
                        }
                        guard let self else { return }
                        // A stream cut before its usage (or a provider that reports none) is still accounted, as an estimate.
                        let counted = usage ?? .estimate(request: request, output: streamed)
                        await self.account(counted, caller: record.caller, project: record.project, model: model, provider: provider, keys: keys, record: &record)
                        record.finish(reply: nil, elapsed: ContinuousClock.now - started, streamed: true)
                        self.emit(record)
                    }
                    // The caller went away: stop reading the provider's stream (its connection closes).
                    continuation.onTermination = { termination in if case .cancelled = termination { pump.cancel() } }
                    return .stream(output, headers: headers + [("x-portless-model", name)])
                } catch let error as ProviderError {
                    failures.append("\(name): \(error)")
                    breaker.record(error, for: provider.name)
                    if !error.retryable { break }
                } catch {
                    breaker.released(provider.name)
                    if Task.isCancelled { break }
                    failures.append("\(name): \(error)")
                }
            }
        }
        record.failures = failures + unsupported
        let failure = failures.isEmpty && !unsupported.isEmpty ? Self.unsupportedError(unsupported)
            : APIError(status: 502, message: "every model for this request failed before streaming: \(failures.joined(separator: "; "))", type: "api_error", code: "upstream_failed")
        record.finish(reply: .failure(failure), elapsed: ContinuousClock.now - started)
        emit(record)
        return .failure(failure)
    }

    /// Relays an Anthropic model's own stream to a Messages caller, event by event, taking the
    /// usage from `message_start` and `message_delta` (estimated if the stream ends without them).
    func relay(_ events: AsyncThrowingStream<(String, JSONValue), Error>, name: String, request: JSONValue, model: ModelConfig,
                       provider: ProviderConfig, keys: [String], record: AuditRecord, started: ContinuousClock.Instant)
        -> AsyncThrowingStream<(String, JSONValue), Error> {
        let (output, continuation) = AsyncThrowingStream<(String, JSONValue), Error>.makeStream()
        let pump = Task { [weak self] in
            var record = record
            var start: JSONValue?
            var outputTokens: Int?
            var streamed = ""
            do {
                for try await (type, data) in events {
                    var data = data
                    if type == "message_start" {
                        data = data.setting("message", (data["message"] ?? .object([:])).setting("model", .string(name)))
                        start = data["message"]?["usage"]
                    }
                    if type == "message_delta", let tokens = data["usage"]?["output_tokens"] { outputTokens = tokens.count() }
                    if type == "content_block_delta" {
                        streamed += data["delta"]?["text"]?.stringValue ?? data["delta"]?["partial_json"]?.stringValue ?? ""
                    }
                    continuation.yield((type, data))
                }
                continuation.finish()
            } catch {
                record.failures.append("\(name): stream broke after it started: \(error)")
                continuation.finish(throwing: error)
            }
            guard let self else { return }
            var counted = TokenUsage(anthropic: start)
            if let outputTokens { counted.output = outputTokens }
            if start == nil || outputTokens == nil {
                let estimate = TokenUsage.estimate(request: request, output: streamed)
                counted = TokenUsage(input: start == nil ? estimate.input : counted.input, output: outputTokens ?? estimate.output,
                                     cachedInput: counted.cachedInput, cacheWrite: counted.cacheWrite, estimated: true)
            }
            await self.account(counted, caller: record.caller, project: record.project, model: model, provider: provider, keys: keys, record: &record)
            record.finish(reply: nil, elapsed: ContinuousClock.now - started, streamed: true)
            self.emit(record)
        }
        continuation.onTermination = { termination in if case .cancelled = termination { pump.cancel() } }
        return output
    }
}
