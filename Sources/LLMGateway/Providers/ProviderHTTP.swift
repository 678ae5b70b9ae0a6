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

    func request(_ url: String, method: HTTPMethod = .POST, headers: [(String, String)], body: Data?) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    /// Sends and returns the response once its head arrived, failing on non-2xx statuses.
    func send(_ request: HTTPClientRequest, deadline: Duration) async throws -> HTTPClientResponse {
        let response: HTTPClientResponse
        do {
            response = try await Self.client.execute(request, deadline: .now() + .nanoseconds(Int64(deadline.components.seconds) * 1_000_000_000 + deadline.components.attoseconds / 1_000_000_000))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw ProviderError.timeout("provider '\(provider)' did not answer within \(deadline)")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            Self.logger.warning("provider unreachable", metadata: ["provider": "\(provider)", "url": "\(request.url)", "error": "\(error)"])
            throw ProviderError.unreachable("provider '\(provider)' could not be reached")
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
            if (300..<400).contains(status) {
                Self.logger.warning("provider redirected; not followed", metadata: ["provider": "\(provider)", "location": "\(response.headers.first(name: "Location") ?? "")"])
                throw ProviderError.unreachable("provider '\(provider)' answered with a redirect (HTTP \(status)), which the gateway does not follow: check its base_url")
            }
            if status == 401 || status == 403 {
                Self.logger.error("provider refused the gateway's credentials", metadata: ["provider": "\(provider)", "status": "\(status)",
                                                                                       "body": "\(String(decoding: body.prefix(300), as: UTF8.self))"])
                throw ProviderError.credentials("provider '\(provider)' refused the gateway's credentials (HTTP \(status)); an operator must check the key configured for it")
            }
            throw ProviderError.http(status: status, message: Self.errorMessage(body, provider: provider))
        }
        return response
    }

    /// The whole answer as JSON; `deadline` covers the body too, not only the head.
    func json(_ request: HTTPClientRequest, deadline: Duration) async throws -> JSONValue {
        let provider = self.provider
        let body = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                let response = try await send(request, deadline: deadline)
                return try await response.body.collect(upTo: Self.maxBody)
            }
            group.addTask {
                try await Task.sleep(for: deadline)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let body = first else {
                throw ProviderError.timeout("provider '\(provider)' did not answer within \(deadline)")
            }
            return body
        }
        do { return try JSONValue.parse(Data(body.readableBytesView)) } catch {
            throw ProviderError.malformed("provider '\(provider)' answered with something that is not JSON")
        }
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
