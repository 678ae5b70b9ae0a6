import CLibUV

/// A listening TCP socket on one loop. Loop-confined.
public final class TCPListener {
    public let loop: EventLoop
    private let handle: UnsafeMutablePointer<uv_tcp_t>
    private var onConnection: ((StreamConnection) -> Void)?
    private var closed = false
    public private(set) var localAddress: SocketAddress

    public init(loop: EventLoop, address: SocketAddress, onConnection: @escaping (StreamConnection) -> Void) throws {
        loop.preconditionInEventLoop()
        self.loop = loop
        self.onConnection = onConnection
        self.localAddress = address
        handle = .allocate(capacity: 1)
        uv_tcp_init(loop.uvLoop, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        do {
            try address.withSockaddr { sa in try UVError.check(uv_tcp_bind(handle, sa, 0), "bind \(address)") }
            try UVError.check(uv_listen(uvStream(handle), 511) { server, status in
                guard let server, let data = server.pointee.data, status >= 0 else { return }
                let listener = Unmanaged<TCPListener>.fromOpaque(data).takeUnretainedValue()
                if let connection = StreamConnection.accept(from: server, loop: listener.loop) {
                    listener.onConnection?(connection)
                }
            }, "listen \(address)")
        } catch {
            close()
            throw error
        }
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getsockname(handle, $0, &length) }
        }
        if rc == 0, let bound = SocketAddress.from(storage) { localAddress = bound }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        onConnection = nil
        uv_close(uvHandle(handle)) { h in
            guard let h, let data = h.pointee.data else { return }
            Unmanaged<TCPListener>.fromOpaque(data).release()
            UnsafeMutablePointer<uv_tcp_t>(OpaquePointer(h)).deallocate()
        }
    }
}
