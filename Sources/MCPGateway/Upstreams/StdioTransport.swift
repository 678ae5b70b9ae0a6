import Foundation
import Logging
import GatewayKit
import Shared

/// An upstream MCP server the gateway runs as a child process, speaking newline-delimited
/// JSON-RPC on its stdin and stdout (MCP's stdio transport). Its stderr goes to the gateway's.
/// The child is reaped when it exits and terminated (then killed) when the transport closes.
final class StdioTransport: UpstreamTransport, @unchecked Sendable {
    /// A line longer than this is not a message we accept; the server is restarted.
    static let maxLineBytes = 16 << 20

    private let config: UpstreamConfig
    private let logger: Logger
    private let lock = NSLock()
    private var process: Process?
    private var input: FileHandle?

    init(config: UpstreamConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    func open(onMessage: @escaping @Sendable (JSONValue) -> Void, onClose: @escaping @Sendable (String) -> Void) async throws {
        guard let command = config.command, let program = command.first else { throw RPCError(code: JSONRPC.internalError, message: "no command") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program.contains("/") ? program : "/usr/bin/env")
        process.arguments = program.contains("/") ? Array(command.dropFirst()) : command
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in config.env ?? [:] { environment[key] = value }
        process.environment = environment
        if let cwd = config.cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        let name = config.name
        process.terminationHandler = { process in
            onClose("process exited with status \(process.terminationStatus)")
        }
        try process.run()
        lock.withLock {
            self.process = process
            self.input = stdin.fileHandleForWriting
        }
        let output = stdout.fileHandleForReading
        let logger = self.logger
        let thread = Thread {
            var buffer = Data()
            while true {
                let chunk = output.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = buffer[buffer.startIndex..<newline]
                    buffer = Data(buffer[buffer.index(after: newline)...])
                    guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) else { continue }
                    do { onMessage(try JSONValue.parse(Data(line))) } catch {
                        logger.warning("upstream wrote a line that is not JSON; ignored", metadata: ["upstream": "\(name)", "bytes": "\(line.count)"])
                    }
                }
                if buffer.count > Self.maxLineBytes {
                    logger.error("upstream wrote a line over 16 MiB; restarting it", metadata: ["upstream": "\(name)"])
                    process.terminate()
                    break
                }
            }
        }
        thread.name = "mcp-stdio-\(name)"
        thread.start()
    }

    func send(_ message: JSONValue, method: String?, name: String?) async throws {
        var data = message.encoded()
        data.append(UInt8(ascii: "\n"))
        try lock.withLock {
            guard let input, process?.isRunning == true else { throw RPCError(code: JSONRPC.connectionClosed, message: "process is not running") }
            try input.write(contentsOf: data)
        }
    }

    func settle(protocolVersion: String?, modern: Bool) {}

    func close() async {
        let process: Process? = lock.withLock {
            try? self.input?.close()
            self.input = nil
            return self.process
        }
        guard let process, process.isRunning else { return }
        process.terminate()
        for _ in 0..<20 where process.isRunning { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
