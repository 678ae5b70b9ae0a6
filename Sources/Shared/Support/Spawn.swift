import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Child processes without Foundation's `Process`: a clean signal mask and no inherited
/// descriptors, and a blocking wait that does not depend on a run loop or a SIGCHLD handler.
public enum Spawn {
    public struct Failure: Error, CustomStringConvertible {
        public let program: String
        public let reason: String
        public var description: String { "cannot start \(program): \(reason)" }
    }

    /// Starts `argv` in a session of its own, output appended to `log`; returns its pid.
    public static func start(_ argv: [String], output log: String) throws -> Int32 {
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
        guard rc == 0 else { throw Failure(program: argv[0], reason: String(cString: strerror(rc))) }
        return pid
    }

    private static func openDescriptors() -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return names.compactMap { Int32($0) }.filter { fcntl($0, F_GETFD) >= 0 }
    }

    /// Runs `argv` to completion, output appended to `log`; returns its exit status (128 + the
    /// signal's number if a signal ended it).
    public static func run(_ argv: [String], output log: String) throws -> Int32 {
        let pid = try start(argv, output: log)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(program: argv[0], reason: "waitpid: \(String(cString: strerror(errno)))") }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
