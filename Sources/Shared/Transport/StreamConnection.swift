import CLibUV
import Foundation

/// A byte stream on one event loop — TCP, or a unix socket for services on the same machine.
/// Loop-confined.
///
/// Reads land in the loop's one read buffer (no allocation per read, and an idle connection
/// holds none): a read is handled completely before the loop reads anything else. Writes go straight
/// to the kernel with `uv_try_write`; only what the kernel refuses is copied and queued, and
/// `queuedBytes` is what backpressure decisions read.
public final class StreamConnection {
    public let loop: EventLoop
    /// A uv_tcp_t or a uv_pipe_t; both begin with uv_stream_t, which is all reads and writes use.
    let handle: UnsafeMutablePointer<uv_stream_t>
    private let isTCP: Bool
    private var reading = false
    public private(set) var isClosed = false
    public private(set) var queuedBytes = 0

    /// Called with bytes read; the buffer is valid only during the call.
    public var onRead: ((UnsafeRawBufferPointer) -> Void)?
    /// When set, the peer's end of stream (FIN) only stops reading and calls this; the
    /// connection stays open for writing. When nil, end of stream closes the connection.
    public var onEndOfStream: (() -> Void)?
    /// Called once, when the connection ends: nil on orderly EOF or local close.
    public var onClose: ((Error?) -> Void)?
    /// Called when queued writes drop to `lowWaterMark` after having exceeded it.
    public var onWritable: (() -> Void)?
    public var lowWaterMark = TransportLimits.writeLowWaterMark
    private var aboveLowWater = false
    private var closeWhenFlushed = false
    private var writeShutDown = false

    init(loop: EventLoop, unixSocket: Bool = false) {
        loop.preconditionInEventLoop()
        self.loop = loop
        isTCP = !unixSocket
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(MemoryLayout<uv_tcp_t>.size, MemoryLayout<uv_pipe_t>.size),
                                                   alignment: 16)
        if unixSocket {
            uv_pipe_init(loop.uvLoop, raw.assumingMemoryBound(to: uv_pipe_t.self), 0)
        } else {
            uv_tcp_init(loop.uvLoop, raw.assumingMemoryBound(to: uv_tcp_t.self))
        }
        handle = raw.assumingMemoryBound(to: uv_stream_t.self)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    private var tcpHandle: UnsafeMutablePointer<uv_tcp_t> { UnsafeMutablePointer<uv_tcp_t>(OpaquePointer(handle)) }

    /// Connects to a local service: a TCP address or a unix socket.
    public static func connect(loop: EventLoop, to address: LocalAddress,
                               completion: @escaping (Result<StreamConnection, Error>) -> Void) {
        switch address {
        case .tcp(let socket):
            connect(loop: loop, to: socket, completion: completion)
        case .unix(let path):
            let connection = StreamConnection(loop: loop, unixSocket: true)
            let request = PendingConnect.request(connection, target: address.description, completion)
            uv_pipe_connect(request, UnsafeMutablePointer<uv_pipe_t>(OpaquePointer(connection.handle)), path,
                            PendingConnect.completed)
        }
    }

    /// Connects to `address`; `completion` runs on the loop.
    public static func connect(loop: EventLoop, to address: SocketAddress,
                               completion: @escaping (Result<StreamConnection, Error>) -> Void) {
        let connection = StreamConnection(loop: loop)
        let request = PendingConnect.request(connection, target: address.description, completion)
        do {
            try address.withSockaddr { sa in
                try UVError.check(uv_tcp_connect(request, connection.tcpHandle, sa, PendingConnect.completed), "connect \(address)")
            }
        } catch {
            PendingConnect.abandon(request)
            connection.close()
            completion(.failure(error))
        }
    }

    /// A connect succeeded: TCP streams send small writes at once.
    fileprivate func connected() {
        if isTCP { uv_tcp_nodelay(tcpHandle, 1) }
    }

    public var peerAddress: SocketAddress? {
        guard isTCP else { return nil }
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getpeername(tcpHandle, $0, &length) }
        }
        return rc == 0 ? SocketAddress.from(storage) : nil
    }

    public func startReading() {
        guard !reading, !isClosed else { return }
        reading = true
        uv_read_start(handle, { h, _, buf in
            guard let h, let buf, let data = h.pointee.data else { return }
            let connection = Unmanaged<StreamConnection>.fromOpaque(data).takeUnretainedValue()
            let buffer = connection.loop.readBuffer
            buf.pointee = uv_buf_init(buffer.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(buffer.count))
        }, { stream, nread, _ in
            guard let stream, let data = stream.pointee.data else { return }
            let connection = Unmanaged<StreamConnection>.fromOpaque(data).takeUnretainedValue()
            if nread > 0 {
                connection.onRead?(UnsafeRawBufferPointer(rebasing: connection.loop.readBuffer[0..<nread]))
            } else if nread < 0 {
                let error = UVError(code: Int32(nread), operation: "read")
                if error.isEOF, let endOfStream = connection.onEndOfStream {
                    connection.stopReading()
                    connection.onEndOfStream = nil
                    endOfStream()
                } else {
                    connection.close(error: error.isEOF ? nil : error)
                }
            }
        })
    }

    public func stopReading() {
        guard reading, !isClosed else { return }
        reading = false
        uv_read_stop(handle)
    }

    /// Writes all of `bytes`, in order. Never blocks; what the kernel does not take is queued.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard !isClosed, let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        if queuedBytes == 0 {
            var buf = uv_buf_init(UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: CChar.self)), UInt32(bytes.count))
            let written = uv_try_write(handle, &buf, 1)
            if written >= 0 {
                offset = Int(written)
            } else if written != UV_EAGAIN.rawValue {
                close(error: UVError(code: written, operation: "write"))
                return
            }
            if offset == bytes.count { return }
        }
        enqueue(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
    }

    /// Writes `first` then `second` with one system call (a frame's sealed head from a scratch
    /// buffer, its body from where it already is); what the kernel does not take is queued.
    public func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) {
        guard !isClosed else { return }
        guard second.count > 0 else { return write(first) }
        guard first.count > 0 else { return write(second) }
        var written = 0
        if queuedBytes == 0 {
            var buffers = (uv_buf_init(UnsafeMutablePointer(mutating: first.baseAddress?.assumingMemoryBound(to: CChar.self)), UInt32(first.count)),
                           uv_buf_init(UnsafeMutablePointer(mutating: second.baseAddress?.assumingMemoryBound(to: CChar.self)), UInt32(second.count)))
            let rc = withUnsafeMutableBytes(of: &buffers) { uv_try_write(handle, $0.baseAddress?.assumingMemoryBound(to: uv_buf_t.self), 2) }
            if rc >= 0 {
                written = Int(rc)
            } else if rc != UV_EAGAIN.rawValue {
                close(error: UVError(code: rc, operation: "write"))
                return
            }
            if written == first.count + second.count { return }
        }
        if written < first.count {
            enqueue(UnsafeRawBufferPointer(rebasing: first[written...]), then: second)
        } else {
            enqueue(UnsafeRawBufferPointer(rebasing: second[(written - first.count)...]))
        }
    }

    private func enqueue(_ bytes: UnsafeRawBufferPointer, then more: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        let request = WriteRequest(copying: bytes, then: more, connection: self)
        queuedBytes += request.count
        if queuedBytes > lowWaterMark { aboveLowWater = true }
        let rc = uv_write(request.request, handle, &request.buffer, 1) { req, status in
            guard let req, let data = req.pointee.data else { return }
            let request = Unmanaged<WriteRequest>.fromOpaque(data).takeRetainedValue()
            request.connection.writeCompleted(bytes: request.count, status: status)
        }
        if rc < 0 {
            Unmanaged.passUnretained(request).release()
            close(error: UVError(code: rc, operation: "write"))
        }
    }

    private func writeCompleted(bytes: Int, status: Int32) {
        queuedBytes -= bytes
        if closeWhenFlushed && queuedBytes == 0 { return close() }
        if status < 0 {
            if status != UV_ECANCELED.rawValue { close(error: UVError(code: status, operation: "write")) }
            return
        }
        if aboveLowWater && queuedBytes <= lowWaterMark {
            aboveLowWater = false
            onWritable?()
        }
    }

    /// Sends FIN once everything queued has been written; reading continues.
    public func shutdownWrite() {
        guard !isClosed, !writeShutDown else { return }
        writeShutDown = true
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        let rc = uv_shutdown(request, handle) { request, _ in request?.deallocate() }
        if rc < 0 { request.deallocate() }
    }

    /// Closes once everything queued has reached the kernel; reads stop now.
    public func closeAfterFlush() {
        if queuedBytes == 0 { return close() }
        stopReading()
        closeWhenFlushed = true
    }

    /// Closes the connection once; `onClose` receives `error`.
    public func close(error: Error? = nil) {
        close(error: error, reset: false)
    }

    /// Closes at once with a TCP reset: the peer sees an error, never a clean end of stream, and
    /// what was still queued is dropped. (A unix socket has no reset: it is closed.) For a stream
    /// that did not end as it should — a circuit cut by a router, an end that was forged.
    public func abort(error: Error? = nil) {
        close(error: error, reset: isTCP && !writeShutDown)
    }

    private func close(error: Error?, reset: Bool) {
        guard !isClosed else { return }
        isClosed = true
        reading = false
        let callback = onClose
        onRead = nil
        onClose = nil
        onWritable = nil
        onEndOfStream = nil
        let release: uv_close_cb = { h in
            guard let h, let data = h.pointee.data else { return }
            let connection = Unmanaged<StreamConnection>.fromOpaque(data).takeRetainedValue()
            UnsafeMutableRawPointer(h).deallocate()
        }
        if !reset || uv_tcp_close_reset(tcpHandle, release) != 0 {
            uv_close(UnsafeMutablePointer<uv_handle_t>(OpaquePointer(handle)), release)
        }
        callback?(error)
    }

    /// Adopts an accepted socket from `server`.
    static func accept(from server: UnsafeMutablePointer<uv_stream_t>, loop: EventLoop, unixSocket: Bool = false) -> StreamConnection? {
        let connection = StreamConnection(loop: loop, unixSocket: unixSocket)
        guard uv_accept(server, connection.handle) == 0 else {
            connection.close()
            return nil
        }
        if !unixSocket { uv_tcp_nodelay(connection.tcpHandle, 1) }
        return connection
    }
}

/// A queued write: the request and a private copy of the bytes, freed when libuv is done.
private final class WriteRequest {
    let request: UnsafeMutablePointer<uv_write_t>
    var buffer: uv_buf_t
    let storage: UnsafeMutableRawBufferPointer
    let connection: StreamConnection
    var count: Int { storage.count }

    init(copying bytes: UnsafeRawBufferPointer, then more: UnsafeRawBufferPointer, connection: StreamConnection) {
        storage = .allocate(byteCount: bytes.count + more.count, alignment: 16)
        storage.copyMemory(from: bytes)
        if more.count > 0 { UnsafeMutableRawBufferPointer(rebasing: storage[bytes.count...]).copyMemory(from: more) }
        buffer = uv_buf_init(storage.baseAddress?.assumingMemoryBound(to: CChar.self), UInt32(storage.count))
        request = .allocate(capacity: 1)
        self.connection = connection
        request.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    deinit {
        storage.deallocate()
        request.deallocate()
    }
}

/// A connect in flight: the connection and who waits for it, owned by the `uv_connect_t`.
private final class PendingConnect {
    let connection: StreamConnection
    let target: String
    let completion: (Result<StreamConnection, Error>) -> Void

    private init(_ connection: StreamConnection, _ target: String, _ completion: @escaping (Result<StreamConnection, Error>) -> Void) {
        self.connection = connection
        self.target = target
        self.completion = completion
    }

    static func request(_ connection: StreamConnection, target: String,
                        _ completion: @escaping (Result<StreamConnection, Error>) -> Void) -> UnsafeMutablePointer<uv_connect_t> {
        let request = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(PendingConnect(connection, target, completion)).toOpaque()
        return request
    }

    /// Frees a request libuv never took.
    static func abandon(_ request: UnsafeMutablePointer<uv_connect_t>) {
        if let data = request.pointee.data { Unmanaged<PendingConnect>.fromOpaque(data).release() }
        request.deallocate()
    }

    static let completed: uv_connect_cb = { request, status in
        guard let request, let data = request.pointee.data else { return }
        let pending = Unmanaged<PendingConnect>.fromOpaque(data).takeRetainedValue()
        request.deallocate()
        if status < 0 {
            pending.connection.close()
            pending.completion(.failure(UVError(code: status, operation: "connect \(pending.target)")))
        } else {
            pending.connection.connected()
            pending.completion(.success(pending.connection))
        }
    }
}
