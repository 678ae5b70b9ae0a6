import Foundation
import Shared
#if canImport(Glibc)
import Glibc
#endif

/// Asks the kernel for an unused loopback port.
enum FreePort {
    static func pick() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LaunchError.failed("socket", "cannot open a socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Int32 in
                guard bind(fd, sa, length) == 0 else { return -1 }
                return getsockname(fd, sa, &length)
            }
        }
        guard bound == 0 else { throw LaunchError.failed("bind", "cannot bind a loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func resolve(_ address: SocketAddress?) throws -> SocketAddress {
        let base = address ?? SocketAddress(host: "127.0.0.1", port: 0)
        return base.port == 0 ? SocketAddress(host: base.host, port: try pick()) : base
    }

    static func accepts(_ address: SocketAddress) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_addr.s_addr = inet_addr(address.host == "localhost" ? "127.0.0.1" : address.host)
        target.sin_port = UInt16(address.port).bigEndian
        return withUnsafePointer(to: &target) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
