import Foundation
import HTTPTypes
import GatewayKit
import NIOCore
import Shared

/// The answer to one caller request. The response is JSON when the result is the first thing
/// to send, and becomes an SSE stream as soon as there is something to send before it —
/// progress, a log message, or a request of the upstream server for the caller (sampling,
/// elicitation, roots) — provided the caller accepts `text/event-stream`.
final class DownstreamExchange: Sendable {
    enum Event: Sendable {
        case message(Data)
        case final(Data, status: HTTPResponse.Status)
    }

    let canStream: Bool
    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation

    init(canStream: Bool) {
        self.canStream = canStream
        (events, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// Sends a message ahead of the result; false when the caller takes no stream.
    @discardableResult
    func send(_ message: Data) -> Bool {
        guard canStream else { return false }
        if case .terminated = continuation.yield(.message(message)) { return false }
        return true
    }

    func finish(_ response: Data, status: HTTPResponse.Status = .ok) {
        continuation.yield(.final(response, status: status))
        continuation.finish()
    }
}

/// How often an open SSE stream carries a comment, so proxies and clients do not take a quiet
/// stream for a dead one.
let sseKeepaliveInterval: Duration = .seconds(15)

extension GatewayResponseWriter {
    /// Writes `exchange` as JSON or SSE, whichever its first event calls for.
    func respond(_ exchange: DownstreamExchange) async throws {
        var iterator = exchange.events.makeAsyncIterator()
        guard let first = await iterator.next() else {
            return try await writeResponse(HTTPResponse(status: .internalServerError))
        }
        if case .final(let data, let status) = first { return try await json(data, status: status) }
        var body = try await writeHead(Self.sseHead)
        let (merged, input) = AsyncStream<Data>.makeStream(bufferingPolicy: .unbounded)
        let pump = Task {
            if case .message(let data) = first { input.yield(data) }
            while let event = await iterator.next() {
                switch event {
                case .message(let data): input.yield(data)
                case .final(let data, _): input.yield(data)
                }
            }
            input.finish()
        }
        let keepalive = Self.keepalive(into: input)
        defer {
            pump.cancel()
            keepalive.cancel()
        }
        for await message in merged { try await body.write(Self.sseEvent(message)) }
        try await body.finish(nil)
    }

    /// An SSE response: one `message` event per JSON-RPC message, until the stream ends; a
    /// keepalive comment in every quiet `sseKeepaliveInterval`.
    func sse(_ messages: AsyncStream<Data>) async throws {
        var body = try await writeHead(Self.sseHead)
        let (merged, input) = AsyncStream<Data>.makeStream(bufferingPolicy: .unbounded)
        let pump = Task {
            for await message in messages { input.yield(message) }
            input.finish()
        }
        let keepalive = Self.keepalive(into: input)
        defer {
            pump.cancel()
            keepalive.cancel()
        }
        for await message in merged { try await body.write(Self.sseEvent(message)) }
        try await body.finish(nil)
    }

    private static var sseHead: HTTPResponse {
        var fields = HTTPFields()
        fields[.contentType] = "text/event-stream"
        fields[.cacheControl] = "no-cache"
        return HTTPResponse(status: .ok, headerFields: fields)
    }

    /// An empty message stands for a keepalive comment.
    private static func keepalive(into input: AsyncStream<Data>.Continuation) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: sseKeepaliveInterval)
                if Task.isCancelled { return }
                if case .terminated = input.yield(Data()) { return }
            }
        }
    }

    private static func sseEvent(_ message: Data) -> ByteBuffer {
        var buffer = ByteBuffer()
        if message.isEmpty {
            buffer.writeString(": keepalive\n\n")
        } else {
            buffer.writeString("event: message\ndata: ")
            buffer.writeBytes(message)
            buffer.writeString("\n\n")
        }
        return buffer
    }
}
