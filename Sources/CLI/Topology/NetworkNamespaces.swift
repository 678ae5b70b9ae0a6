import Foundation
import Shared

/// `topology up --netns`: each host of the file in its own network namespace, joined to a bridge
/// in the root namespace by a veth pair, on a private /24 that exists only on this machine.
/// Enterprise hosts get an nftables input policy of drop (loopback and replies excepted): nothing
/// can connect to them, which is exactly what a tunneler needs.
struct NetworkNamespaces: Codable {
    /// Short id that keeps parallel networks apart (interface names are limited to 15 bytes).
    let id: String
    let subnet: Int
    let hosts: [String]
    let enterprise: [String]

    var bridge: String { "plb\(id)" }
    var gateway: String { "10.201.\(subnet).1" }

    func namespace(_ host: String) -> String { "pl\(id)-\(host)" }

    func address(_ host: String) -> String {
        let index = hosts.firstIndex(of: host) ?? 0
        return "10.201.\(subnet).\(10 + index)"
    }

    /// argv prefix that runs a command inside a host's namespace.
    func exec(_ host: String) -> [String] { ["/usr/sbin/ip", "netns", "exec", namespace(host)] }

    static func create(for topology: TopologyFile) throws -> NetworkNamespaces {
        guard geteuid() == 0 else { throw NamespaceError.notPermitted("--netns needs root (CAP_NET_ADMIN)") }
        let hosts = (topology.hosts ?? []).map(\.name)
        guard !hosts.isEmpty else { throw NamespaceError.noHosts }
        let id = String(UUID().uuidString.prefix(4)).lowercased()
        let used = (try? ProcessLauncher.run(["/usr/sbin/ip", "-4", "-o", "addr"]).output) ?? ""
        guard let subnet = (1...250).first(where: { !used.contains("10.201.\($0).") }) else {
            throw NamespaceError.failed("no free 10.201.x.0/24 subnet")
        }
        let layout = NetworkNamespaces(id: id, subnet: subnet, hosts: hosts,
                                       enterprise: (topology.hosts ?? []).filter { $0.enterprise == true }.map(\.name))
        do { try layout.build() } catch {
            layout.destroy()
            throw error
        }
        return layout
    }

    private func build() throws {
        try ip("link", "add", bridge, "type", "bridge")
        try ip("addr", "add", "\(gateway)/24", "dev", bridge)
        try ip("link", "set", bridge, "up")
        for (index, host) in hosts.enumerated() {
            let ns = namespace(host)
            let outside = "plv\(id)h\(index)"
            let inside = "plp\(id)h\(index)"
            try ip("netns", "add", ns)
            try ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            try ip("link", "set", outside, "master", bridge)
            try ip("link", "set", outside, "up")
            try ip("link", "set", inside, "netns", ns)
            try ip("-n", ns, "link", "set", inside, "name", "eth0")
            try ip("-n", ns, "addr", "add", "\(address(host))/24", "dev", "eth0")
            try ip("-n", ns, "link", "set", "eth0", "up")
            try ip("-n", ns, "link", "set", "lo", "up")
            try ip("-n", ns, "route", "add", "default", "via", gateway)
            if enterprise.contains(host) { try firewall(ns) }
        }
    }

    private func firewall(_ ns: String) throws {
        let rules = """
            table inet portless {
              chain input {
                type filter hook input priority 0; policy drop;
                iif lo accept
                ct state established,related accept
              }
            }
            """
        let file = NSTemporaryDirectory() + "portless-nft-\(id).conf"
        try Files.write(rules, to: file)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try ProcessLauncher.run(["/usr/sbin/ip", "netns", "exec", ns, "nft", "-f", file])
        guard result.status == 0 else { throw NamespaceError.failed("nft in \(ns): \(result.output)") }
    }

    /// Removes every namespace and the bridge; safe to call on a partial layout.
    func destroy() {
        for host in hosts { _ = try? ProcessLauncher.run(["/usr/sbin/ip", "netns", "del", namespace(host)]) }
        _ = try? ProcessLauncher.run(["/usr/sbin/ip", "link", "del", bridge])
    }

    /// Whether something accepts TCP connections on `address` inside `host`'s namespace.
    func accepts(_ address: String, in host: String) -> Bool {
        let parts = address.split(separator: ":")
        guard parts.count == 2 else { return false }
        let probe = "exec 3<>/dev/tcp/\(parts[0])/\(parts[1])"
        return (try? ProcessLauncher.run(exec(host) + ["/bin/bash", "-c", probe]).status) == 0
    }

    private func ip(_ arguments: String...) throws {
        let result = try ProcessLauncher.run(["/usr/sbin/ip"] + arguments)
        guard result.status == 0 else { throw NamespaceError.failed("ip \(arguments.joined(separator: " ")): \(result.output)") }
    }
}

enum NamespaceError: Error, CustomStringConvertible {
    case notPermitted(String)
    case noHosts
    case failed(String)

    var description: String {
        switch self {
        case .notPermitted(let why): return why
        case .noHosts: return "--netns needs a 'hosts:' section naming the machines, and 'host:' on each component"
        case .failed(let why): return "network namespace setup failed: \(why)"
        }
    }
}
