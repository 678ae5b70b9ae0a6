import Foundation
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
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else is inherited: a pipe our own caller reads must not stay open in a daemon.
        for fd in Self.openDescriptors() where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts clean: its own session (POSIX_SPAWN_SETSID, glibc 0x80), no blocked signal
        // and default dispositions (SETSIGMASK 0x08, SETSIGDEF 0x04). posix_spawn otherwise copies the
        // calling thread's mask, and our threads block most signals: SIGTERM would not stop the child.
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(0x80 | 0x08 | 0x04))
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArgs, environ)
        guard rc == 0 else { throw LaunchError.failed(argv[0], String(nulTerminated: Array(String(cString: strerror(rc)).utf8CString))) }
        return pid
    }

    private static func openDescriptors() -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return names.compactMap { Int32($0) }.filter { fcntl($0, F_GETFD) >= 0 }
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
