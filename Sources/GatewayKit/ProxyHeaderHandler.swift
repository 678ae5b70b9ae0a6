import Foundation
import Logging
import NIOCore
import Shared
#if canImport(Glibc)
import Glibc
#endif

/// Reads the PROXY protocol v2 header the hosting tunneler writes first on every connection to
/// the gateway's private socket, records the caller it names, and then steps out of the way.
///
/// The header is believed only from the tunneler's own process: the kernel says who is at the
/// other end of the unix socket (SO_PEERCRED), and any other process — an MCP server the gateway
/// started, another program of the same user — is disconnected before a byte it sent is read.
public final class ProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    /// `struct ucred` (Linux): what SO_PEERCRED returns.
    struct PeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    private var buffered: ByteBuffer?
    private var peerChecked = false
    private var peerVerified = false
    private let callers: CallerRegistry
    private static let logger = Logger(label: "portless.gateway")

    public init(callers: CallerRegistry) { self.callers = callers }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { verifyPeer(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        verifyPeer(context)
        context.fireChannelActive()
    }

    private func verifyPeer(_ context: ChannelHandlerContext) {
        guard !peerChecked else { return }
        peerChecked = true
        guard let provider = context.channel as? SocketOptionProvider else { return context.close(promise: nil) }
        let credentials: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        credentials.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            guard case .success(let peer) = result, peer.pid == getpid() else {
                Self.logger.warning("a process other than the tunneler connected to a gateway socket; disconnected",
                                    metadata: ["pid": "\((try? result.get())?.pid ?? -1)"])
                return context.close(promise: nil)
            }
            peerVerified = true
            if let pending = buffered {
                buffered = nil
                parse(context: context, pending)
            }
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var pending = buffered {
            pending.writeBuffer(&bytes)
            bytes = pending
        }
        guard peerVerified else {
            guard bytes.readableBytes < ProxyProtocol.maxHeader else { return context.close(promise: nil) }
            buffered = bytes
            return
        }
        parse(context: context, bytes)
    }

    private func parse(context: ChannelHandlerContext, _ input: ByteBuffer) {
        var bytes = input
        switch ProxyProtocol.parse(bytes.readableBytesView) {
        case .needMore:
            guard bytes.readableBytes < ProxyProtocol.maxHeader else { return context.close(promise: nil) }
            buffered = bytes
        case .header(let caller, let length):
            if let identity = caller.identity {
                callers.set(Caller(identity: identity, circuit: caller.circuitID), for: context.channel)
            }
            bytes.moveReaderIndex(forwardBy: length)
            finish(context: context, rest: bytes)
        case .absent:
            finish(context: context, rest: bytes)
        case .invalid:
            context.close(promise: nil)
        }
    }

    private func finish(context: ChannelHandlerContext, rest: ByteBuffer) {
        buffered = nil
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Connection → the caller its PROXY header named. Entries leave when the connection closes.
/// Also what to do when a connection's caller leaves (`whenGone`).
public final class CallerRegistry: Sendable {
    public init() {}
    private struct Entry {
        var caller: Caller?
        var gone = false
        var onGone: [UInt64: @Sendable () -> Void] = [:]
    }
    private let entries = Locked<[ObjectIdentifier: Entry]>([:])
    private let nextToken = Locked<UInt64>(0)

    /// A `whenGone` registration, to `forget` once the request it guards is over (a keep-alive
    /// connection carries any number of requests: their callbacks must not pile up).
    public struct Departure: Sendable {
        fileprivate let channel: ObjectIdentifier
        fileprivate let token: UInt64
    }

    public func set(_ caller: Caller, for channel: any Channel) {
        let key = ObjectIdentifier(channel)
        entries.withLock { $0[key, default: Entry()].caller = caller }
        channel.closeFuture.whenComplete { [weak self] _ in self?.entries.withLock { _ = $0.removeValue(forKey: key) } }
    }

    public func caller(of channel: any Channel) -> Caller? {
        entries.withLock { $0[ObjectIdentifier(channel)]?.caller }
    }

    /// Runs `body` once when the caller of `channel` is gone (at once if it already is), unless
    /// the registration is forgotten first.
    @discardableResult
    public func whenGone(_ channel: any Channel, _ body: @escaping @Sendable () -> Void) -> Departure {
        let key = ObjectIdentifier(channel)
        let token = nextToken.withLock { $0 += 1; return $0 }
        let gone: Bool = entries.withLock { entries in
            guard entries[key]?.gone != true else { return true }
            entries[key, default: Entry()].onGone[token] = body
            return false
        }
        if gone || !channel.isActive { body() }
        return Departure(channel: key, token: token)
    }

    /// The request `departure` guarded is over: its callback will not run.
    public func forget(_ departure: Departure) {
        entries.withLock { entries in _ = entries[departure.channel]?.onGone.removeValue(forKey: departure.token) }
    }

    /// Runs `work` in the calling task, which is cancelled if the caller of `channel` leaves
    /// first. (A task of its own would cost every request a hop between threads; the calling
    /// task serves that connection only, and a connection whose caller left has nothing more to do.)
    public func abandoningIfGone<T>(_ channel: any Channel, _ work: () async -> T) async -> T {
        let running = RunningTask()
        let departure = whenGone(channel) { running.cancel() }
        defer {
            running.finished()
            forget(departure)
        }
        return await work()
    }

    /// Callbacks waiting for the caller of `channel` to leave (for tests).
    public func waiting(on channel: any Channel) -> Int { entries.withLock { $0[ObjectIdentifier(channel)]?.onGone.count ?? 0 } }

    package func departed(_ channel: any Channel) {
        let callbacks: [@Sendable () -> Void] = entries.withLock { entries in
            let key = ObjectIdentifier(channel)
            guard var entry = entries[key], !entry.gone else { return [] }
            entry.gone = true
            let callbacks = Array(entry.onGone.values)
            entry.onGone = [:]
            entries[key] = entry
            return callbacks
        }
        for callback in callbacks { callback() }
    }
}
