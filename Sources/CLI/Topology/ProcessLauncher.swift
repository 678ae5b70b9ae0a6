import Foundation
import Shared
#if canImport(Glibc)
import Glibc
#endif

/// Starts detached processes (own session, output to a log file) and stops them.
enum ProcessLauncher {
    /// Where the Portless executables are: $PORTLESS_BIN_DIR, else beside this one.
    static var binaryDirectory: String {
        ProcessInfo.processInfo.environment["PORTLESS_BIN_DIR"]
            ?? URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    /// For profiling (Benchmarks/run): the process named $PORTLESS_WRAP_PROCESS is started under
    /// the command in $PORTLESS_WRAP_COMMAND (split on spaces), e.g. `valgrind --tool=callgrind`.
    static func wrapper(for name: String) -> [String] {
        let environment = ProcessInfo.processInfo.environment
        guard environment["PORTLESS_WRAP_PROCESS"] == name, let command = environment["PORTLESS_WRAP_COMMAND"] else { return [] }
        var words = command.split(separator: " ").map(String.init)
        if let program = words.first, !program.contains("/") {
            let directories = (environment["PATH"] ?? "/usr/bin").split(separator: ":")
            words[0] = directories.map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? program
        }
        return words
    }

    static func spawn(_ argv: [String], log: String) throws -> Int32 {
        do { return try Spawn.start(argv, output: log) } catch let error as Spawn.Failure {
            throw LaunchError.failed(argv[0], error.reason)
        }
    }

    /// Runs to completion and returns the exit status and combined output.
    static func run(_ argv: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        // A zombie is not alive: read its state.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let state = stat[stat.index(close, offsetBy: 2)]
            return state != "Z" && state != "X"
        }
        return true
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    static func stop(_ pids: [Int32], grace: TimeInterval = 5) {
        for pid in pids where isAlive(pid) { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline, pids.contains(where: isAlive) {
            var status: Int32 = 0
            for pid in pids { waitpid(pid, &status, WNOHANG) }
            usleep(50_000)
        }
        for pid in pids where isAlive(pid) { kill(pid, SIGKILL) }
        var status: Int32 = 0
        for pid in pids { waitpid(pid, &status, WNOHANG) }
    }
}

enum LaunchError: Error, CustomStringConvertible {
    case failed(String, String)
    var description: String {
        switch self {
        case .failed(let program, let why): return "cannot start \(program): \(why)"
        }
    }
}
