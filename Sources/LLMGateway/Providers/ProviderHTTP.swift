import AsyncHTTPClient
import Foundation
import GatewayKit
import Logging
import NIOCore
import NIOHTTP1
import Shared

/// HTTP for adapters: JSON out, JSON (or a byte stream) back, provider errors made readable.
///
/// Redirects are never followed: a redirect to another origin would carry the provider key
/// (`Authorization`, `x-api-key`, `api-key`) to whoever the redirect names. Errors name the
/// provider, never its URL (callers see them; a URL may name internal hosts).
struct ProviderHTTP: Sendable {
    /// No tracer: a span per call costs a task-local scope even when nothing records it.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()
    static let maxBody = 64 << 20

    let provider: String

    func request(_ url: String, method: HTTPMethod = .POST, headers: [(String, String)], body: Data?) -> ProviderRequest {
        var request = ProviderRequest(url: url, method: method, headers: HTTPHeaders(headers), body: body)
        if body != nil, !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
        // The gateway's span is the provider call's parent (W3C Trace Context).
        if let trace = TraceContext.current { request.headers.replaceOrAdd(name: "traceparent", value: trace.traceparent) }
        return request
    }

    /// Sends and returns the response once its head arrived, failing on non-2xx statuses
    /// (for streams: the caller reads the body as it comes).
    func send(_ request: ProviderRequest, deadline: Duration) async throws -> HTTPClientResponse {
        let response: HTTPClientResponse
        do {
            response = try await Self.client.execute(request.streamed, deadline: .now() + TimeAmount(deadline))
        } catch {
            throw failure(error, url: request.url, deadline: deadline)
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
            throw refusal(status: status, headers: response.headers, body: body)
        }
        return response
    }

    /// The whole answer as JSON; `deadline` covers the body too, not only the head. On a pooled
    /// connection of this thread's event loop (`PooledHTTPClient`): the request is one pipeline
    /// write, and this task resumes once, with the whole answer.
    func json(_ request: ProviderRequest, deadline: Duration) async throws -> JSONValue {
        let response: PooledHTTPClient.Response
        do {
            response = try await PooledHTTPClient.shared.execute(url: request.url, method: request.method, headers: request.headers,
                                                                 body: request.body.map { ByteBuffer(bytes: $0) },
                                                                 deadline: .now() + TimeAmount(deadline), maxBody: Self.maxBody)
        } catch PooledHTTPClient.Failure.invalidURL {
            throw ProviderError.unreachable("provider '\(provider)' has a base_url the gateway cannot use")
        } catch PooledHTTPClient.Failure.tooLarge {
            throw ProviderError.malformed("provider '\(provider)' answered with more than \(Self.maxBody >> 20) MiB")
        } catch {
            throw failure(error, url: request.url, deadline: deadline)
        }
        guard (200..<300).contains(response.status) else {
            throw refusal(status: response.status, headers: response.headers, body: Data(response.body.readableBytesView))
        }
        do { return try response.body.withUnsafeReadableBytes { try JSONParser.parse($0) } } catch {
            throw ProviderError.malformed("provider '\(provider)' answered with something that is not JSON")
        }
    }

    /// What a failed exchange means for the caller: a timeout, the caller's own cancellation, or
    /// an unreachable provider (the URL and the client's error go to the log only).
    private func failure(_ error: Error, url: String, deadline: Duration) -> Error {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return ProviderError.timeout("provider '\(provider)' did not answer within \(deadline)")
        }
        if error as? PooledHTTPClient.Failure == .timedOut {
            return ProviderError.timeout("provider '\(provider)' did not answer within \(deadline)")
        }
        if case .connectTimeout? = error as? NIOCore.ChannelError {
            return ProviderError.timeout("provider '\(provider)' did not answer within \(deadline)")
        }
        if error is CancellationError || Task.isCancelled { return CancellationError() }
        Self.logger.warning("provider unreachable", metadata: ["provider": "\(provider)", "url": "\(url)", "error": "\(error)"])
        return ProviderError.unreachable("provider '\(provider)' could not be reached")
    }

    /// A non-2xx answer as the error the caller sees.
    private func refusal(status: Int, headers: HTTPHeaders, body: Data) -> Error {
        if (300..<400).contains(status) {
            Self.logger.warning("provider redirected; not followed", metadata: ["provider": "\(provider)", "location": "\(headers.first(name: "Location") ?? "")"])
            return ProviderError.unreachable("provider '\(provider)' answered with a redirect (HTTP \(status)), which the gateway does not follow: check its base_url")
        }
        if status == 401 || status == 403 {
            Self.logger.error("provider refused the gateway's credentials", metadata: ["provider": "\(provider)", "status": "\(status)",
                                                                                   "body": "\(String(decoding: body.prefix(300), as: UTF8.self))"])
            return ProviderError.credentials("provider '\(provider)' refused the gateway's credentials (HTTP \(status)); an operator must check the key configured for it")
        }
        return ProviderError.http(status: status, message: Self.errorMessage(body, provider: provider))
    }

    static let logger = Logger(label: "portless.llm-gateway")

    /// The message inside a provider's error body, whatever its shape.
    static func errorMessage(_ body: Data, provider: String) -> String {
        guard let value = try? JSONValue.parse(body) else {
            return "provider '\(provider)': " + String(decoding: body.prefix(300), as: UTF8.self)
        }
        let message = value["error"]?["message"]?.stringValue ?? value["error"]?.stringValue ?? value["message"]?.stringValue
            ?? value["Message"]?.stringValue ?? String(decoding: body.prefix(300), as: UTF8.self)
        return "provider '\(provider)': \(message)"
    }
}

extension AsyncSequence where Element == ByteBuffer {
    /// Newline-delimited records of a streamed body (NDJSON), each without its newline.
    func lines(limit: Int = ProviderHTTP.maxBody) -> AsyncThrowingStream<Data, Error> where Self: Sendable {
        AsyncThrowingStream { continuation in
            let task = Task {
                var pending = Data()
                do {
                    for try await chunk in self {
                        pending.append(contentsOf: chunk.readableBytesView)
                        while let newline = pending.firstIndex(of: 0x0A) {
                            let line = pending[pending.startIndex..<newline]
                            if !line.isEmpty { continuation.yield(Data(line)) }
                            pending = Data(pending[pending.index(after: newline)...])
                        }
                        if pending.count > limit { throw ProviderError.malformed("a streamed line over \(limit) bytes") }
                    }
                    if !pending.isEmpty { continuation.yield(pending) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The `data:` payloads of a streamed SSE body.
    func serverSentEvents() -> AsyncThrowingStream<Data, Error> where Self: Sendable {
        AsyncThrowingStream { continuation in
            let task = Task {
                var decoder = SSEDecoder()
                do {
                    for try await chunk in self {
                        for event in try decoder.feed(chunk.readableBytesView) { continuation.yield(event) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// A call to a provider, before it is sent (as a stream or collected whole).
struct ProviderRequest: Sendable {
    var url: String
    var method: HTTPMethod
    var headers: HTTPHeaders
    var body: Data?

    /// For the client's async API, whose answer is read as it streams.
    var streamed: HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers = headers
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        return request
    }
}
