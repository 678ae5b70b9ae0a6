import Crypto
import Foundation
import XCTest
@testable import Shared

/// Locates the built binaries and runs them; starts and stops topologies.
enum Portless {
    static var binDir: String {
        if let dir = ProcessInfo.processInfo.environment["PORTLESS_BIN_DIR"] { return dir }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }

    static var repoRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The interpreter with the official MCP and OpenAI client libraries (`make venv`).
    static var python: String {
        ProcessInfo.processInfo.environment["PORTLESS_PYTHON"] ?? repoRoot + "/.build/venv/bin/python"
    }

    /// Topologies start MCP servers with `{python}`: make sure they get the one with the libraries.
    static let environmentReady: Void = {
        setenv("PORTLESS_PYTHON", python, 0)
        setenv("PATH", binDir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"), 1)
    }()

    @discardableResult
    static func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        _ = environmentReady
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binDir + "/" + program)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A shell command line (for `ps`, `pgrep` and the like); returns its stdout.
    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// A loopback port free at the moment of asking.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Int32 in bind(fd, sa, length); return getsockname(fd, sa, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func cli(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let result = try run("portless", arguments, environment: environment)
        guard result.status == 0 else { throw TestFailure("portless \(arguments.joined(separator: " ")) failed: \(result.output)") }
        return result.output
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A plain blocking TCP client, so tests see exactly what an unmodified application sees.
final class TCPClient {
    let fd: Int32

    init(_ address: String, timeoutSeconds: Int = 10) throws {
        let parts = address.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw TestFailure("bad address \(address)") }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_addr.s_addr = inet_addr(String(parts[0]))
        target.sin_port = port.bigEndian
        let rc = withUnsafePointer(to: &target) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw TestFailure("cannot connect to \(address)") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until the peer closes (FIN or RST) or a timeout; returns the bytes and whether it closed.
    func readToEnd(limit: Int = 256 << 20) -> (data: [UInt8], eof: Bool) {
        var result: [UInt8] = []
        let closed = stream { chunk in
            result.append(contentsOf: chunk)
            return result.count < limit
        }
        return (result, closed)
    }

    /// Hands each chunk read to `onChunk` until the peer closes (true), a timeout or error
    /// (false), or `onChunk` returns false.
    func stream(_ onChunk: (ArraySlice<UInt8>) -> Bool) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
            if !onChunk(buffer[0..<n]) { return false }
        }
    }

    /// How a connection ended, as an application sees it.
    enum Ending: Equatable { case eof, reset, timeout }

    /// Reads until the peer closes; whether it was a clean end (FIN) or a reset is kept apart.
    func readUntilClosed(limit: Int = 256 << 20) -> (bytes: [UInt8], ending: Ending) {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while result.count < limit {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return (result, .eof) }
            if n < 0 { return (result, errno == ECONNRESET ? .reset : .timeout) }
            result.append(contentsOf: buffer[0..<n])
        }
        return (result, .timeout)
    }

    /// Reads until `marker` has arrived.
    func read(until marker: String) -> String {
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !text.contains(marker) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        return text
    }
}

/// A network started from a topology file for one test class; `down()` stops it.
final class RunningTopology: @unchecked Sendable {
    // safe: written once in init, read-only afterwards.
    let state: String
    private(set) var status: [String: Any] = [:]

    convenience init(_ file: String) throws {
        try self.init(path: Portless.repoRoot + "/topology/" + file)
    }

    /// Starts the network of `path`; `environment` is added to what its processes inherit.
    init(path: String, environment: [String: String] = [:]) throws {
        state = NSTemporaryDirectory() + "portless-\((path as NSString).lastPathComponent)-\(UUID().uuidString.prefix(8))"
        _ = try Portless.cli(["topology", "up", path, "--state", state], environment: environment)
        let json = try Portless.cli(["topology", "status", "--state", state, "--json"])
        status = (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]) ?? [:]
    }

    func down() {
        _ = try? Portless.run("portless", ["topology", "down", "--state", state])
        try? FileManager.default.removeItem(atPath: state)
    }

    /// The last lines of every process's log, for a failure message.
    func logTails(_ lines: Int = 15) -> String {
        let directory = state + "/logs"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.sorted() ?? []
        return files.map { name in
            let text = (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
            return "== \(name)\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    func interceptAddress(_ service: String = "hello") -> String {
        ((status["intercepts"] as? [[String: Any]])?.first { $0["service"] as? String == service }?["address"] as? String) ?? ""
    }

    /// The address of `tunneler`'s intercept of `service` ("" when it has none: the test then fails on connecting).
    func interceptAddress(_ service: String, of tunneler: String) -> String {
        (try? interceptAddress(service, tunneler: tunneler)) ?? ""
    }

    /// The address of `tunneler`'s intercept of `service`.
    func interceptAddress(_ service: String, tunneler: String) throws -> String {
        guard let address = (status["intercepts"] as? [[String: Any]])?
            .first(where: { $0["service"] as? String == service && $0["tunneler"] as? String == tunneler })?["address"] as? String else {
            throw TestFailure("tunneler '\(tunneler)' does not intercept '\(service)'")
        }
        return address
    }

    /// The loopback address `topology up` gave an app (`apps:` in the file).
    func appAddress(_ name: String) -> String? {
        guard let data = FileManager.default.contents(atPath: state + "/topology.json"),
              let record = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return (record["ports"] as? [String: String])?["app/\(name)"]
    }

    func pid(of name: String) -> Int32? {
        ((status["processes"] as? [[String: Any]])?.first { $0["name"] as? String == name }?["pid"] as? Int).map(Int32.init)
    }

    var profile: [String] { ["--profile", state + "/profile.json"] }

    /// One HTTP/1.1 GET through an intercept, as a plain client.
    func get(_ path: String, service: String = "hello") throws -> (head: String, body: [UInt8]) {
        let client = try TCPClient(interceptAddress(service), timeoutSeconds: 60)
        client.send("GET \(path) HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        let (data, _) = client.readToEnd()
        guard let split = data.firstRange(of: [13, 10, 13, 10]) else { throw TestFailure("no HTTP response: \(String(decoding: data, as: UTF8.self))") }
        return (String(decoding: data[..<split.lowerBound], as: UTF8.self), Array(data[split.upperBound...]))
    }

    /// The controller's view: routers, links, terminators, circuits.
    func network() throws -> [String: Any] {
        let json = try Portless.cli(["network"] + profile)
        return (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]) ?? [:]
    }
}

/// Runs commands inside network namespaces (tests with `--netns`).
enum Namespace {
    static func run(_ namespace: String, _ command: [String]) throws -> (status: Int32, output: String) {
        try capture("/usr/sbin/ip", ["netns", "exec", namespace] + command)
    }

    static func list() throws -> [String] {
        try capture("/usr/sbin/ip", ["netns", "list"]).output.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
    }

    private static func capture(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

extension TCPClient {
    /// Reads an HTTP response to its end, hashing the body as it arrives; `onBody` sees the
    /// running count of body bytes (to act in the middle of a transfer).
    func readHashedBody(onBody: (Int) -> Void = { _ in }) -> (bytes: Int, digest: SHA256.Digest, closed: Bool) {
        var hash = SHA256()
        var header: [UInt8] = []
        var body = 0
        let closed = stream { chunk in
            if header.firstRange(of: [13, 10, 13, 10]) == nil {
                header.append(contentsOf: chunk)
                guard let split = header.firstRange(of: [13, 10, 13, 10]) else { return true }
                hash.update(data: header[split.upperBound...])
                body += header.count - split.upperBound
            } else {
                hash.update(data: chunk)
                body += chunk.count
            }
            onBody(body)
            return true
        }
        return (body, hash.finalize(), closed)
    }
}

extension DemoPayload {
    /// The SHA-256 of the first `size` bytes the demo service serves (`size` a multiple of the block).
    static func digest(of size: Int) -> SHA256.Digest {
        var expected = SHA256()
        for _ in 0..<(size / blockSize) { expected.update(data: block) }
        return expected.finalize()
    }
}
