import NIOCore
import Shared

/// Notices when the caller of a gateway connection is gone: the connection closed, or its input
/// ended (the tunneler turns a caller's FIN into a half-close). As nginx does for a client that
/// closes early (its 499), a request still running for that caller is abandoned — its upstream
/// or provider call is cancelled instead of running on for nobody.
final class CallerDepartureHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let callers: CallerRegistry

    init(callers: CallerRegistry) { self.callers = callers }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { callers.departed(context.channel) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        callers.departed(context.channel)
        context.fireChannelInactive()
    }
}
