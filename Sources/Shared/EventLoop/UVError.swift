import CLibUV

/// The single mapping point from libuv's negative return codes to a Swift error.
public struct UVError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let operation: String

    public var description: String {
        "\(operation): \(String(cString: uv_strerror(code)))"
    }

    public var isEOF: Bool { code == UV_EOF.rawValue }

    @discardableResult
    static func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws -> Int32 {
        if rc < 0 { throw UVError(code: rc, operation: operation()) }
        return rc
    }
}

/// Reinterprets a pointer to a concrete libuv handle as the generic handle or stream it starts with.
@inline(__always)
func uvHandle<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<uv_handle_t> {
    UnsafeMutablePointer<uv_handle_t>(OpaquePointer(p))
}

@inline(__always)
func uvStream<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<uv_stream_t> {
    UnsafeMutablePointer<uv_stream_t>(OpaquePointer(p))
}
