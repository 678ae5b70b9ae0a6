import Foundation
import Logging
import NIOCore
import NIOPosix
import GatewayKit
import Shared

/// An upstream MCP server the gateway runs as a child process, speaking newline-delimited
/// JSON-RPC on its stdin and stdout (MCP's stdio transport). Its stderr goes to the gateway's.
///
/// The child gets a minimal environment plus its configured `env` — never the tunneler's own
/// (provider keys live there) — and runs in its own process group, so stopping it stops
/// whatever it started. Its pipes are non-blocking NIO channels: a child that stops reading
/// its stdin holds up only its own writes, and when a write has made no progress for the
/// upstream's timeout (or more than `maxPendingBytes` wait) the child is stopped, and restarted
/// by its supervisor.
final class StdioTransport: UpstreamTransport, @unchecked Sendable {
    // safe: every mutable field is in `state`, behind its lock.
    /// A line longer than this is not a message we accept; the server is restarted.
    static let maxLineBytes = 16 << 20
    /// Bytes written to the child's stdin and not yet taken by it; beyond this, sends fail.
    static let maxPendingBytes = 16 << 20

    private struct State {
        var channel: Channel?
        var process: ChildProcess?
        var pendingBytes = 0
        var lastWriteProgress = ContinuousClock.now
        var onClose: (@Sendable (String) -> Void)?
        var closed = false
    }

    private let config: UpstreamConfig
    private let logger: Logger
    private let state = Locked(State())

    init(config: UpstreamConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    func open(onMessage: @escaping @Sendable (JSONValue) -> Void, onClose: @escaping @Sendable (String) -> Void) async throws {
        guard let command = config.command else { throw RPCError(code: JSONRPC.internalError, message: "no command") }
        let process: ChildProcess
        let toChild: (read: Int32, write: Int32), fromChild: (read: Int32, write: Int32)
        do {
            toChild = try ChildProcess.pipe()
            do { fromChild = try ChildProcess.pipe() } catch {
                Glibc.close(toChild.read)
                Glibc.close(toChild.write)
                throw error
            }
            do {
                process = try ChildProcess.spawn(command, environment: ChildProcess.minimalEnvironment(adding: config.env ?? [:]),
                                                 directory: config.cwd, stdin: toChild.read, stdout: fromChild.write, stderr: STDERR_FILENO)
            } catch {
                [toChild.read, toChild.write, fromChild.read, fromChild.write].forEach { Glibc.close($0) }
                throw error
            }
        } catch {
            throw RPCError(code: JSONRPC.internalError, message: "\(error)")
        }
        Glibc.close(toChild.read)
        Glibc.close(fromChild.write)
        state.withLock {
            $0.process = process
            $0.onClose = onClose
        }
        let name = config.name
        let logger = self.logger
        let channel: Channel
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 1 << 20))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maxLength: Self.maxLineBytes)))
                        try channel.pipeline.syncOperations.addHandler(MessageHandler(upstream: name, logger: logger, onMessage: onMessage))
                    }
                }
                .takingOwnershipOfDescriptors(input: fromChild.read, output: toChild.write).get()
        } catch {
            Glibc.close(fromChild.read)
            Glibc.close(toChild.write)
            await process.stop()
            throw RPCError(code: JSONRPC.internalError, message: "cannot attach to the process's pipes: \(error)")
        }
        state.withLock { $0.channel = channel }
        // The exit status says more than the closed pipe: give it a moment to arrive first.
        channel.closeFuture.whenComplete { [weak self] _ in
            channel.eventLoop.scheduleTask(in: .milliseconds(200)) { self?.ended("its stdout closed") }
        }
        process.onExit { [weak self] reason in self?.ended("process \(reason)") }
        watchWrites(on: channel)
    }

    /// Stops a child whose stdin has not moved for the upstream's timeout.
    private func watchWrites(on channel: Channel) {
        let limit = config.timeout
        channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { [weak self] task in
            guard let self else { return task.cancel() }
            let (closed, stalled) = self.state.withLock { ($0.closed, $0.pendingBytes > 0 && ContinuousClock.now - $0.lastWriteProgress > limit) }
            if closed { return task.cancel() }
            if stalled {
                task.cancel()
                self.logger.error("upstream stopped reading its stdin; restarting it", metadata: ["upstream": "\(self.config.name)"])
                self.ended("it stopped reading its stdin for \(limit.milliseconds) ms")
            }
        }
    }

    /// The transport is over: tell the client once, and stop the process.
    private func ended(_ reason: String) {
        let (onClose, process, channel): ((@Sendable (String) -> Void)?, ChildProcess?, Channel?) = state.withLock {
            guard !$0.closed else { return (nil, nil, nil) }
            $0.closed = true
            return ($0.onClose, $0.process, $0.channel)
        }
        guard let onClose else { return }
        channel?.close(promise: nil)
        if let process, !process.hasExited { Task { await process.stop() } }
        onClose(reason)
    }

    func send(_ message: JSONValue, method: String?, name: String?) async throws {
        var bytes = message.encoded()
        bytes.append(UInt8(ascii: "\n"))
        let count = bytes.count
        let channel: Channel = try state.withLock {
            guard !$0.closed, let channel = $0.channel else {
                throw RPCError(code: JSONRPC.connectionClosed, message: "process is not running")
            }
            guard $0.pendingBytes + count <= Self.maxPendingBytes else {
                throw RPCError(code: JSONRPC.connectionClosed, message: "the process is not reading its input (\($0.pendingBytes) bytes waiting)")
            }
            if $0.pendingBytes == 0 { $0.lastWriteProgress = .now }
            $0.pendingBytes += count
            return channel
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: written)
        written.futureResult.whenComplete { [weak self] _ in
            self?.state.withLock {
                $0.pendingBytes -= count
                $0.lastWriteProgress = .now
            }
        }
        // Not awaited: the caller's own deadline covers a child that does not read.
    }

    func settle(protocolVersion: String?, modern: Bool) {}

    func close() async {
        let (process, channel): (ChildProcess?, Channel?) = state.withLock {
            $0.closed = true
            return ($0.process, $0.channel)
        }
        // Closing stdin is how a stdio server is asked to stop; then signals.
        try? await channel?.close(mode: .output)
        await process?.stop()
        try? await channel?.close()
    }
}

/// Splits the child's stdout into lines, refusing lines over `maxLength`.
private struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxLength: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > maxLength { throw LineTooLong() }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        guard let line = buffer.readSlice(length: length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    struct LineTooLong: Error {}
}

/// One JSON-RPC message per line; other lines (a server's stray prints) are logged and skipped.
private final class MessageHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let upstream: String
    let logger: Logger
    let onMessage: @Sendable (JSONValue) -> Void

    init(upstream: String, logger: Logger, onMessage: @escaping @Sendable (JSONValue) -> Void) {
        self.upstream = upstream
        self.logger = logger
        self.onMessage = onMessage
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if line.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { return }
        do {
            onMessage(try line.withUnsafeReadableBytes { try JSONParser.parse($0) })
        } catch {
            logger.warning("upstream wrote a line that is not JSON; ignored", metadata: ["upstream": "\(upstream)", "bytes": "\(line.readableBytes)"])
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is LineDecoder.LineTooLong {
            logger.error("upstream wrote a line over 16 MiB; restarting it", metadata: ["upstream": "\(upstream)"])
        }
        context.close(promise: nil)
    }
}
