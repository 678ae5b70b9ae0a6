import NIOCore
import NIOHTTP1

/// One request and its answer at a time on a pooled provider connection (`PooledHTTPClient`):
/// writes the request, collects the response up to its limit, and says whether the connection
/// may carry another.
final class HTTPExchangeHandler: ChannelInboundHandler, @unchecked Sendable {
    // safe: every field is read and written on the channel's event loop only (`start` runs there
    // through `flatSubmit`; the rest are pipeline callbacks).
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    private var promise: EventLoopPromise<PooledHTTPClient.Response>?
    private var timer: Scheduled<Void>?
    private var maxBody = 0
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    private var requestKeepAlive = true
    private var broken = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Sends `exchange`; the future holds the whole answer. On the channel's loop only.
    func start(_ exchange: PooledHTTPClient.Exchange, deadline: NIODeadline, context channel: any Channel) -> EventLoopFuture<PooledHTTPClient.Response> {
        let promise = channel.eventLoop.makePromise(of: PooledHTTPClient.Response.self)
        guard let context, self.promise == nil, !broken, channel.isActive else {
            promise.fail(PooledHTTPClient.Failure.closed(answered: false))
            return promise.futureResult
        }
        self.promise = promise
        maxBody = exchange.maxBody
        head = nil
        body = nil
        requestKeepAlive = exchange.head.isKeepAlive
        timer = channel.eventLoop.scheduleTask(deadline: deadline) { [self] in
            fail(PooledHTTPClient.Failure.timedOut)
        }
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let body = exchange.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard promise != nil else {
            // An answer nobody asked for: the connection is out of step, and goes.
            broken = true
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let response):
            head = response
        case .body(var part):
            if (body?.readableBytes ?? 0) + part.readableBytes > maxBody { return fail(PooledHTTPClient.Failure.tooLarge) }
            if body == nil { body = part } else { body?.writeBuffer(&part) }
        case .end:
            guard let head, let promise else { return fail(PooledHTTPClient.Failure.closed(answered: true)) }
            self.promise = nil
            timer?.cancel()
            timer = nil
            if !(head.isKeepAlive && requestKeepAlive) { broken = true }
            promise.succeed(PooledHTTPClient.Response(status: Int(head.status.code), headers: head.headers,
                                                      body: body ?? context.channel.allocator.buffer(capacity: 0), reusable: !broken))
            self.head = nil
            body = nil
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(PooledHTTPClient.Failure.closed(answered: head != nil))
        context.fireChannelInactive()
    }

    /// A socket error before any answer counts as the connection closing (a reused connection
    /// the server had closed: the request may go again on a new one); anything else is itself.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let closedEarly = head == nil && (error is IOError || error is ChannelError)
        fail(closedEarly ? PooledHTTPClient.Failure.closed(answered: false) : error)
    }

    /// Ends the exchange in progress with `error`; the connection is not used again.
    private func fail(_ error: any Error) {
        broken = true
        timer?.cancel()
        timer = nil
        let promise = self.promise
        self.promise = nil
        promise?.fail(error)
        context?.close(promise: nil)
    }
}
