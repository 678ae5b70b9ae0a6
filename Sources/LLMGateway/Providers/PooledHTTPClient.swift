import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The provider calls whose answer is one JSON body: HTTP/1.1 over keep-alive connections kept
/// per origin and per event loop, written and read by plain NIO handlers.
///
/// Why not AsyncHTTPClient here: its per-request machinery (request bag, state machines, delegate
/// hops, a scheduled deadline per task) was the largest single cost of a gateway request — more
/// instructions than the gateway's own routing, guardrails, budgets and audit together. A call
/// here is one pipeline write and one response decode on the connection's loop, picked as the
/// calling thread's loop when it is one, so the answer does not cross threads to be read.
///
/// Rules it keeps (the same as the AsyncHTTPClient configuration it replaces for these calls):
/// redirects are answers, never followed (a provider key must not travel to another origin);
/// the deadline covers connecting, sending and the whole body; a body over `maxBody` ends the
/// exchange; a connection is reused only after a complete response that allows it. A request
/// that meets a reused connection closed by the server before any answer arrived is sent once
/// more on a new connection (the server never read it: the race every keep-alive client has).
final class PooledHTTPClient: Sendable {
    static let shared = PooledHTTPClient(group: MultiThreadedEventLoopGroup.singleton)

    /// Idle connections kept per origin and loop; more are closed when they come back.
    static let maxIdlePerLoop = 32
    /// An idle connection older than this is closed rather than reused: servers drop idle
    /// keep-alive connections after a while (often 60 s), and a request on one would race it.
    static let maxIdle: TimeAmount = .seconds(30)
    static let connectLimit: TimeAmount = .seconds(10)

    struct Response: Sendable {
        let status: Int
        let headers: HTTPHeaders
        let body: ByteBuffer
        /// The answer was whole and the connection may carry another request.
        let reusable: Bool
    }

    enum Failure: Error, Equatable {
        case invalidURL
        case timedOut
        case tooLarge
        /// The connection ended before the whole answer; `answered` is false while no byte of it arrived.
        case closed(answered: Bool)
    }

    struct Origin: Hashable, Sendable {
        let tls: Bool
        let host: String
        let port: Int
    }

    /// Where a URL goes, parsed once per distinct URL (parsing costs more than the exchange's head).
    struct Target: Sendable {
        let origin: Origin
        /// Path and query, as the request line carries them.
        let path: String
        let hostHeader: String
    }

    private struct PoolKey: Hashable {
        let origin: Origin
        let loop: ObjectIdentifier
    }

    private struct Idle {
        let channel: any Channel
        let exchange: HTTPExchangeHandler
        let since: NIODeadline
    }

    private let group: MultiThreadedEventLoopGroup
    private let tls: NIOSSLContext?
    private let idle = NIOLockedValueBox<[PoolKey: [Idle]]>([:])
    private let targets = NIOLockedValueBox<[String: Target]>([:])
    private static let logger = Logger(label: "portless.llm-gateway")

    /// `trustRoots`: whom TLS servers must chain to (the system's by default; tests pass their own CA).
    init(group: MultiThreadedEventLoopGroup, trustRoots: NIOSSLTrustRoots = .default) {
        self.group = group
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = trustRoots
        do { tls = try NIOSSLContext(configuration: configuration) } catch {
            Self.logger.error("TLS unavailable for provider calls", metadata: ["error": "\(error)"])
            tls = nil
        }
    }

    func target(_ url: String) throws -> Target {
        if let known = targets.withLockedValue({ $0[url] }) { return known }
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = parsed.host, !host.isEmpty else { throw Failure.invalidURL }
        let tls = scheme == "https"
        let port = parsed.port ?? (tls ? 443 : 80)
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var path = parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath
        if let query = parsed.percentEncodedQuery { path += "?" + query }
        let hostHeader = (bareHost.contains(":") ? "[\(bareHost)]" : bareHost) + (parsed.port.map { ":\($0)" } ?? "")
        let target = Target(origin: Origin(tls: tls, host: bareHost, port: port), path: path, hostHeader: hostHeader)
        targets.withLockedValue { known in
            if known.count >= 256 { known.removeAll() }
            known[url] = target
        }
        return target
    }

    /// Sends the request and returns the whole answer, whatever its status.
    func execute(url: String, method: HTTPMethod, headers: HTTPHeaders, body: ByteBuffer?, deadline: NIODeadline,
                 maxBody: Int) async throws -> Response {
        let target = try target(url)
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target.path, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: target.hostHeader)
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        // Off the group's loops (tests, background work) any loop with an idle connection will do.
        let loop = Self.currentLoop(in: group) ?? loopWithIdleConnection(to: target.origin) ?? group.next()
        let exchange = Exchange(head: head, body: body, maxBody: maxBody)
        let cancellation = NIOLockedValueBox<(cancelled: Bool, channel: (any Channel)?)>((false, nil))
        return try await withTaskCancellationHandler {
            do {
                return try await send(exchange, to: target.origin, on: loop, deadline: deadline, reuse: true, cancellation: cancellation)
            } catch Failure.closed(answered: false) where exchange.reused {
                return try await send(exchange, to: target.origin, on: loop, deadline: deadline, reuse: false, cancellation: cancellation)
            }
        } onCancel: {
            let channel = cancellation.withLockedValue { state -> (any Channel)? in
                state.cancelled = true
                return state.channel
            }
            channel?.close(promise: nil)
        }
    }

    /// What one call sends, and whether its last attempt went out on a reused connection.
    final class Exchange: @unchecked Sendable {
        // safe: `reused` is written before the attempt's future is created and read after it completes.
        let head: HTTPRequestHead
        let body: ByteBuffer?
        let maxBody: Int
        var reused = false

        init(head: HTTPRequestHead, body: ByteBuffer?, maxBody: Int) {
            self.head = head
            self.body = body
            self.maxBody = maxBody
        }
    }

    private func send(_ exchange: Exchange, to origin: Origin, on loop: any EventLoop, deadline: NIODeadline, reuse: Bool,
                      cancellation: NIOLockedValueBox<(cancelled: Bool, channel: (any Channel)?)>) async throws -> Response {
        let key = PoolKey(origin: origin, loop: ObjectIdentifier(loop))
        let pooled = reuse ? takeIdle(key) : nil
        exchange.reused = pooled != nil
        let connection: (channel: any Channel, handler: HTTPExchangeHandler)
        if let pooled {
            connection = (pooled.channel, pooled.exchange)
        } else {
            connection = try await connect(origin, on: loop, deadline: deadline).get()
            // A connection the server closes while it is idle leaves the pool with it.
            let channel = connection.channel
            channel.closeFuture.whenComplete { [weak self] _ in
                self?.idle.withLockedValue { pool in pool[key]?.removeAll { $0.channel === channel } }
            }
        }
        let stop = cancellation.withLockedValue { state -> Bool in
            state.channel = connection.channel
            return state.cancelled
        }
        if stop {
            connection.channel.close(promise: nil)
            throw CancellationError()
        }
        let channel = connection.channel
        let handler = connection.handler
        let future: EventLoopFuture<Response> = channel.eventLoop.flatSubmit {
            handler.start(exchange, deadline: deadline, context: channel)
        }
        let response: Response
        do { response = try await future.get() } catch {
            if cancellation.withLockedValue({ $0.cancelled }) { throw CancellationError() }
            throw error
        }
        if response.reusable { putIdle(key, Idle(channel: channel, exchange: handler, since: .now())) } else { channel.close(promise: nil) }
        return response
    }

    private func connect(_ origin: Origin, on loop: any EventLoop, deadline: NIODeadline) -> EventLoopFuture<(channel: any Channel, handler: HTTPExchangeHandler)> {
        let tls = origin.tls ? self.tls : nil
        if origin.tls && tls == nil { return loop.makeFailedFuture(Failure.closed(answered: false)) }
        let handler = HTTPExchangeHandler()
        let limit = min(Self.connectLimit, max(deadline - .now(), .milliseconds(1)))
        return ClientBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(limit)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let name = Self.isAddress(origin.host) ? nil : origin.host
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: origin.host, port: origin.port)
            .map { ($0, handler) }
    }

    private func loopWithIdleConnection(to origin: Origin) -> (any EventLoop)? {
        let loops = Array(group.makeIterator())
        return idle.withLockedValue { pool in loops.first { pool[PoolKey(origin: origin, loop: ObjectIdentifier($0))]?.isEmpty == false } }
    }

    private func takeIdle(_ key: PoolKey) -> Idle? {
        let oldest = NIODeadline.now() - Self.maxIdle
        var stale: [any Channel] = []
        let found: Idle? = idle.withLockedValue { pool in
            while var list = pool[key], let last = list.popLast() {
                pool[key] = list.isEmpty ? nil : list
                if last.since >= oldest && last.channel.isActive { return last }
                stale.append(last.channel)
            }
            return nil
        }
        for channel in stale { channel.close(promise: nil) }
        return found
    }

    private func putIdle(_ key: PoolKey, _ connection: Idle) {
        let kept = idle.withLockedValue { pool -> Bool in
            guard (pool[key]?.count ?? 0) < Self.maxIdlePerLoop else { return false }
            pool[key, default: []].append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    private static func currentLoop(in group: MultiThreadedEventLoopGroup) -> (any EventLoop)? {
        guard let current = MultiThreadedEventLoopGroup.currentEventLoop else { return nil }
        return group.makeIterator().contains { $0 === current } ? current : nil
    }

    private static func isAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
