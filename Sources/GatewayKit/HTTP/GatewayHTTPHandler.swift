import NIOCore
import NIOHTTP1

/// The last handler of a gateway connection: collects each request (head and body, the body up
/// to `maxBody`), runs the gateway's responder for it in a task, and writes what the responder
/// writes.
///
/// One request at a time, in order: parts of a request that arrives while a response is still
/// being written (HTTP pipelining) wait here, and the socket is not read further until that
/// response has ended — so a caller cannot make the gateway hold more than one request ahead.
/// (NIO's pipelining handler does the same in general; on this path it cost more instructions
/// than the request's own HTTP decoding.)
///
/// A responder that returns without answering gets a 500; one that fails after its response
/// began ends the connection (the caller must not take a cut stream for a whole one).
final class GatewayHTTPHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    typealias Responder = PrivateHTTPServer.Responder

    private let responder: Responder
    private let maxBody: Int
    private let executor: EventLoopExecutor?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyOverLimit = false
    private var inputClosed = false
    private var current: ResponseState?
    /// Parts of the requests that came while `current` was being answered.
    private var waiting = CircularBuffer<HTTPServerRequestPart>()
    private var readHeld = false

    init(responder: @escaping Responder, maxBody: Int, executor: EventLoopExecutor?) {
        self.responder = responder
        self.maxBody = maxBody
        self.executor = executor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if current != nil || !waiting.isEmpty {
            waiting.append(part)
        } else {
            take(part, context: context)
        }
    }

    private func take(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let requestHead):
            head = requestHead
            body = nil
            bodyOverLimit = false
        case .body(var part):
            guard !bodyOverLimit else { return }
            if (body?.readableBytes ?? 0) + part.readableBytes > maxBody {
                bodyOverLimit = true
                body = nil
            } else if body == nil {
                body = part
            } else {
                body?.writeBuffer(&part)
            }
        case .end:
            guard let requestHead = head else { return }
            head = nil
            dispatch(GatewayRequest(head: requestHead, body: body, bodyOverLimit: bodyOverLimit), keepAlive: requestHead.isKeepAlive,
                     context: context)
            body = nil
        }
    }

    /// No more socket reads while a response is pending and a next request already waits.
    func read(context: ChannelHandlerContext) {
        if current != nil && !waiting.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func dispatch(_ request: GatewayRequest, keepAlive: Bool, context: ChannelHandlerContext) {
        let state = ResponseState(handler: self, context: context, keepAlive: keepAlive)
        current = state
        let writer = GatewayResponseWriter(channel: context.channel, state: state)
        let responder = self.responder
        let channel = context.channel
        Task(executorPreference: executor) {
            var failed = false
            do { try await responder(request, writer, channel) } catch { failed = true }
            channel.eventLoop.execute { state.responderReturned(failed: failed) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            // Nothing more will come: close once the answers in progress and waiting are written.
            if current == nil && waiting.isEmpty { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        current?.abandon()
        current = nil
        waiting.removeAll()
        context.fireChannelInactive()
    }

    /// `written`: the response's last write. A connection that ends with this response closes
    /// once that write is on the socket — closing sooner would drop what is still queued.
    fileprivate func responseEnded(_ state: ResponseState, context: ChannelHandlerContext, written: EventLoopFuture<Void>?) {
        guard current === state else { return }
        current = nil
        if !state.keepAlive {
            waiting.removeAll()
            return Self.close(context, after: written)
        }
        // The requests that waited, in order, until one of them is being answered.
        while current == nil, let part = waiting.popFirst() { take(part, context: context) }
        if current == nil && inputClosed { return Self.close(context, after: written) }
        if readHeld && waiting.isEmpty {
            readHeld = false
            context.read()
        }
    }

    private static func close(_ context: ChannelHandlerContext, after written: EventLoopFuture<Void>?) {
        guard let written else { return context.close(promise: nil) }
        written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// Writes `parts` and flushes; the future completes once the last is handed to the socket.
    fileprivate func emit(_ context: ChannelHandlerContext, _ parts: [HTTPServerResponsePart]) -> EventLoopFuture<Void> {
        let promise = context.eventLoop.makePromise(of: Void.self)
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1 {
                context.writeAndFlush(wrapOutboundOut(part), promise: promise)
            } else {
                context.write(wrapOutboundOut(part), promise: nil)
            }
        }
        if parts.isEmpty { promise.succeed() }
        return promise.futureResult
    }

    /// One response's progress, touched on the connection's loop only.
    final class ResponseState: @unchecked Sendable {
        // safe: created on the loop, and every method runs there (`GatewayResponseWriter.send`
        // and the responder's completion hop to the loop first).
        private weak var handler: GatewayHTTPHandler?
        private let context: ChannelHandlerContext
        let keepAlive: Bool
        private var started = false
        private var ended = false

        init(handler: GatewayHTTPHandler, context: ChannelHandlerContext, keepAlive: Bool) {
            self.handler = handler
            self.context = context
            self.keepAlive = keepAlive
        }

        /// Writes `parts` of the response; `ends` when the last of them ends it.
        func emit(_ parts: [HTTPServerResponsePart], ends: Bool) -> EventLoopFuture<Void> {
            guard !ended, let handler else { return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            started = true
            let done = handler.emit(context, parts)
            if ends { markEnded(written: done) }
            return done
        }

        private func markEnded(written: EventLoopFuture<Void>) {
            guard !ended else { return }
            ended = true
            handler?.responseEnded(self, context: context, written: written)
        }

        func responderReturned(failed: Bool) {
            guard !ended, let handler else { return }
            if !started {
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "0")
                markEnded(written: handler.emit(context, [.head(HTTPResponseHead(version: .http1_1, status: .internalServerError, headers: headers)),
                                                          .end(nil)]))
            } else if failed {
                // Begun and not ended: a stream the responder could not finish is cut, not closed as whole.
                ended = true
                context.close(promise: nil)
                handler.responseEnded(self, context: context, written: nil)
            } else {
                markEnded(written: handler.emit(context, [.end(nil)]))
            }
        }

        func abandon() { ended = true }
    }
}
