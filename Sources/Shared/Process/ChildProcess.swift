import CPortlessSystem
import Foundation

/// A child process in its own process group, started with exactly the environment it is given
/// (nothing of ours is inherited: no provider key, no token) and no descriptor beyond 0–2.
/// A waiter thread reaps it; `onExit` runs once, there, when it has exited.
public final class ChildProcess: @unchecked Sendable {
    // safe: `pid` is immutable; the exit state is guarded by `lock`.
    public let pid: pid_t
    private let lock = NSLock()
    private var exitStatus: Int32?
    private var exitHandlers: [@Sendable (String) -> Void] = []

    /// The variables a child gets from our environment when its configuration does not say
    /// otherwise: what programs need to run, nothing that could be a secret.
    public static let inheritedVariables = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME"]

    /// The minimal environment plus `extra` (which wins).
    public static func minimalEnvironment(adding extra: [String: String] = [:]) -> [String: String] {
        let ours = ProcessInfo.processInfo.environment
        var environment: [String: String] = [:]
        for name in inheritedVariables { if let value = ours[name] { environment[name] = value } }
        environment["PATH"] = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for (name, value) in extra { environment[name] = value }
        return environment
    }

    private init(pid: pid_t) { self.pid = pid }

    /// A pipe for a child's stdin or stdout; both ends close on exec (the child gets its end by dup2).
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard portless_pipe(&fds) == 0 else { throw ChildProcessError.spawnFailed("pipe", String(cString: strerror(errno))) }
        return (fds[0], fds[1])
    }

    /// Starts `command` (program first; found on the environment's PATH when it has no '/').
    public static func spawn(_ command: [String], environment: [String: String], directory: String? = nil,
                             stdin: Int32, stdout: Int32, stderr: Int32) throws -> ChildProcess {
        guard let program = command.first, !program.isEmpty else { throw ChildProcessError.noCommand }
        let path = try executable(program, searchPath: environment["PATH"] ?? "")
        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = path.withCString { path in
            directory.withOptionalCString { cwd in portless_spawn(&pid, path, argv, envp, cwd, stdin, stdout, stderr) }
        }
        guard result == 0 else { throw ChildProcessError.spawnFailed(program, String(cString: strerror(result))) }
        let child = ChildProcess(pid: pid)
        let waiter = Thread { child.reap() }
        waiter.name = "reap-\(pid)"
        waiter.start()
        return child
    }

    private static func executable(_ program: String, searchPath: String) throws -> String {
        if program.contains("/") { return program }
        for directory in searchPath.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw ChildProcessError.notFound(program, searchPath)
    }

    private func reap() {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let handlers: [@Sendable (String) -> Void] = lock.withLock {
            exitStatus = status
            defer { exitHandlers.removeAll() }
            return exitHandlers
        }
        let reason = Self.describe(status)
        for handler in handlers { handler(reason) }
    }

    /// "exited with status N" or "killed by signal N".
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7F
        return signal == 0 ? "exited with status \((status >> 8) & 0xFF)" : "killed by signal \(signal)"
    }

    public var hasExited: Bool { lock.withLock { exitStatus != nil } }

    /// Runs `handler` once the process has exited (at once if it already has).
    public func onExit(_ handler: @escaping @Sendable (String) -> Void) {
        let status: Int32? = lock.withLock {
            if exitStatus == nil { exitHandlers.append(handler) }
            return exitStatus
        }
        if let status { handler(Self.describe(status)) }
    }

    /// Sends `signal` to the child's whole process group (its own children too).
    public func signalGroup(_ signal: Int32) {
        guard !hasExited else { return }
        kill(-pid, signal)
    }

    /// Closing its stdin is the polite request; then SIGTERM, then SIGKILL, each after `grace`.
    public func stop(grace: Duration = .seconds(1)) async {
        for signal in [Int32(0), SIGTERM, SIGKILL] {
            if signal != 0 { signalGroup(signal) }
            if signal == SIGTERM { signalGroup(SIGCONT) }  // a stopped child must run to act on it
            let deadline = ContinuousClock.now + grace
            while !hasExited, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if hasExited { return }
        }
    }
}

public enum ChildProcessError: Error, CustomStringConvertible {
    case noCommand
    case notFound(String, String)
    case spawnFailed(String, String)

    public var description: String {
        switch self {
        case .noCommand: return "no command to start"
        case .notFound(let program, let path): return "'\(program)' was not found on PATH (\(path))"
        case .spawnFailed(let program, let why): return "cannot start '\(program)': \(why)"
        }
    }
}

extension Optional where Wrapped == String {
    func withOptionalCString<R>(_ body: (UnsafePointer<CChar>?) -> R) -> R {
        switch self {
        case .some(let text): return text.withCString { body($0) }
        case .none: return body(nil)
        }
    }
}
