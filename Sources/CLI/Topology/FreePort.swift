import Foundation
import Shared
#if canImport(Glibc)
import Glibc
#endif

/// Chooses unused loopback ports for the listeners a topology starts.
///
/// A port is picked outside the kernel's ephemeral range (`ip_local_port_range`): one picked
/// inside it could be handed, between the pick and the listener's bind, to one of the many
/// outgoing connections starting processes make — the listener then failed with "address already
/// in use" (seen in a fresh-clone test run). Ports given out once are not given again.
enum FreePort {
    private static let given = Locked<Set<Int>>([])

    static func pick() throws -> Int {
        let candidates = listenerRange()
        for _ in 0..<200 {
            let port = Int.random(in: candidates)
            guard given.withLock({ $0.insert(port).inserted }) else { continue }
            if bindable(port) { return port }
        }
        return try kernelChosen()
    }

    /// Below the ephemeral range when it leaves room (Linux: 32768–60999 by default), else above it.
    static func listenerRange() -> ClosedRange<Int> {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let bounds = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        guard bounds.count == 2 else { return 20_000...29_999 }
        if bounds[0] > 12_000 { return 10_000...(bounds[0] - 1) }
        if bounds[1] < 63_000 { return (bounds[1] + 1)...65_535 }
        return 20_000...29_999
    }

    private static func bindable(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// What the kernel picks for port 0 (inside the ephemeral range): the last resort.
    private static func kernelChosen() throws -> Int {
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
