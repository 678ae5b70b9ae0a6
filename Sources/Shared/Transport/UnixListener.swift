import CLibUV
import Foundation

/// A listening unix socket on one loop: how services on the tunneler's machine (the gateways,
/// a private HTTP service) are reached without any TCP port. Loop-confined.
public final class UnixListener {
    public let loop: EventLoop
    public let path: String
    private let handle: UnsafeMutablePointer<uv_pipe_t>
    private var onConnection: ((StreamConnection) -> Void)?
    private var closed = false

    /// Binds `path` (replacing a stale socket file there) and accepts connections.
    public init(loop: EventLoop, path: String, onConnection: @escaping (StreamConnection) -> Void) throws {
        loop.preconditionInEventLoop()
        self.loop = loop
        self.path = path
        self.onConnection = onConnection
        handle = .allocate(capacity: 1)
        uv_pipe_init(loop.uvLoop, handle, 0)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        do {
            if let type = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType, type == .typeSocket {
                try? FileManager.default.removeItem(atPath: path)
            }
            try UVError.check(uv_pipe_bind(handle, path), "bind unix:\(path)")
            try UVError.check(uv_listen(uvStream(handle), 511) { server, status in
                guard let server, let data = server.pointee.data, status >= 0 else { return }
                let listener = Unmanaged<UnixListener>.fromOpaque(data).takeUnretainedValue()
                if let connection = StreamConnection.accept(from: server, loop: listener.loop, unixSocket: true) {
                    listener.onConnection?(connection)
                }
            }, "listen unix:\(path)")
        } catch {
            close()
            throw error
        }
    }

    public func close() {
        guard !closed else { return }
        closed = true
        onConnection = nil
        uv_close(uvHandle(handle)) { h in
            guard let h, let data = h.pointee.data else { return }
            Unmanaged<UnixListener>.fromOpaque(data).release()
            UnsafeMutablePointer<uv_pipe_t>(OpaquePointer(h)).deallocate()
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Listens on a local address of either kind.
public enum LocalListener {
    public static func listen(loop: EventLoop, on address: LocalAddress, onConnection: @escaping (StreamConnection) -> Void) throws -> AnyObject {
        switch address {
        case .tcp(let socket): return try TCPListener(loop: loop, address: socket, onConnection: onConnection)
        case .unix(let path): return try UnixListener(loop: loop, path: path, onConnection: onConnection)
        }
    }
}
