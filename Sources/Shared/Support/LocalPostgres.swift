import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL server of one network's own, for `topology up` and tests: a cluster made by
/// `initdb` under `directory`, run by an unprivileged user (PostgreSQL refuses root; as root we
/// run it as the `postgres` user the Debian package creates, else `nobody`), reachable through a
/// unix socket only — no TCP port, `trust` on a socket in a directory only that user (and root)
/// may enter. The superuser and the database are both named `portless`.
public struct LocalPostgres: Sendable {
    public let directory: String
    public var dataDirectory: String { directory + "/data" }
    public var logFile: String { directory + "/postgres.log" }
    public static let database = "portless"

    public init(directory: String) { self.directory = directory }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The socket's directory: in the cluster's, unless that path is too long for a unix socket
    /// (108 bytes with the socket's own name), then a short one in /tmp derived from it.
    public var socketDirectory: String {
        let inside = directory + "/socket"
        if inside.utf8.count + "/.s.PGSQL.5432".utf8.count < 100 { return inside }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in directory.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "/tmp/portless-pg-" + String(hash, radix: 16)
    }

    /// The store URL controllers use.
    public var url: String { url(database: Self.database) }

    public func url(database: String) -> String { "postgres://\(Self.database)@/\(database)?host=\(socketDirectory)" }

    /// Another database on the server (tests give each case one of its own).
    public func createDatabase(_ name: String) throws {
        try run("createdb", ["-h", socketDirectory, "-U", Self.database, name], as: Self.serverUser())
    }

    public var isRunning: Bool {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let pid = text.split(separator: "\n").first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }) else { return false }
        return kill(pid, 0) == 0
    }

    /// Creates the cluster (once) and starts it; returns when it accepts connections.
    public func start() throws {
        let user = Self.serverUser()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        if let user {
            // The server user must reach its directories; the socket directory stays its own.
            try Self.letOthersTraverse(ancestorsOf: directory)
            chmod(directory, 0o711)
            for path in [directory, socketDirectory] { chown(path, user.uid, user.gid) }
        }
        chmod(socketDirectory, 0o700)
        if !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            try run("initdb", ["-D", dataDirectory, "-U", Self.database, "--auth=trust", "-E", "UTF8", "--no-instructions"], as: user)
        }
        guard !isRunning else { return }
        let options = "-k \(socketDirectory) -c listen_addresses='' -c unix_socket_permissions=0700 -c max_connections=100"
        try run("pg_ctl", ["-D", dataDirectory, "-l", logFile, "-o", options, "-w", "-t", "60", "start"], as: user)
        // The answer is a word no warning contains: psql, run as the server's user, may first warn
        // that it cannot enter our working directory — whose name may contain anything, a "1" too.
        let databases = try run("psql", ["-h", socketDirectory, "-U", Self.database, "-d", "postgres", "-Atc",
                                         "SELECT 'portless-database-exists' FROM pg_database WHERE datname = '\(Self.database)'"], as: user)
        if !databases.contains("portless-database-exists") { try createDatabase(Self.database) }
    }

    /// The server's user must be able to pass through every directory above its own: ours get the
    /// search bit for others (never the read bit: their contents stay unlisted); anyone else's
    /// that lacks it is an error naming it.
    static func letOthersTraverse(ancestorsOf path: String) throws {
        var ancestors: [String] = []
        var current = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
        while current.path != "/" && !current.path.isEmpty {
            ancestors.append(current.path)
            current = current.deletingLastPathComponent()
        }
        for ancestor in ancestors {
            var info = stat()
            guard stat(ancestor, &info) == 0 else { continue }
            guard info.st_mode & 0o001 == 0 else { continue }
            guard info.st_uid == geteuid() else {
                throw Failure(description: "PostgreSQL's user cannot enter \(ancestor) (not ours to open): choose a state directory it can reach")
            }
            chmod(ancestor, (info.st_mode & 0o7777) | 0o001)
        }
    }

    /// Runs a SQL file (a dump) in `database`, stopping at the first error.
    public func load(_ file: String, into database: String) throws {
        let inside = directory + "/.load.sql"
        try? FileManager.default.removeItem(atPath: inside)
        try FileManager.default.copyItem(atPath: file, toPath: inside)
        if let user = Self.serverUser() { chown(inside, user.uid, user.gid) }
        defer { try? FileManager.default.removeItem(atPath: inside) }
        try run("psql", ["-h", socketDirectory, "-U", Self.database, "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-f", inside], as: Self.serverUser())
    }

    /// A plain-SQL dump of `database` (no owners, no grants: it loads into any database), written to `path`.
    public func dump(_ database: String = Self.database, to path: String) throws {
        let inside = directory + "/.dump.sql"
        try run("pg_dump", ["-h", socketDirectory, "-U", Self.database, "--no-owner", "--no-privileges", "-f", inside, database], as: Self.serverUser())
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: inside, toPath: path)
        chown(path, geteuid(), getegid())
        chmod(path, 0o600)
    }

    /// Stops the server if it runs (fast shutdown: sessions end, data is kept).
    public func stop() throws {
        guard isRunning else { return }
        try run("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "-t", "60", "stop"], as: Self.serverUser())
    }

    /// Where PostgreSQL's programs are: on PATH, or in the newest /usr/lib/postgresql/N/bin
    /// (where Debian's package puts them).
    public static func program(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        var candidates = path.split(separator: ":").map { "\($0)/\(name)" }
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >)
        candidates += versions.map { "/usr/lib/postgresql/\($0)/bin/\(name)" }
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw Failure(description: "PostgreSQL's '\(name)' was not found (install the Debian 'postgresql' package; 'make' set-up does)")
        }
        return found
    }

    struct ServerUser { let name: String; let uid: uid_t; let gid: gid_t }

    /// Nil when we are not root: the server then runs as us.
    static func serverUser() -> ServerUser? {
        guard geteuid() == 0 else { return nil }
        for name in ["postgres", "nobody"] {
            if let entry = getpwnam(name) { return ServerUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid) }
        }
        return nil
    }

    @discardableResult
    private func run(_ name: String, _ arguments: [String], as user: ServerUser?) throws -> String {
        let program = try Self.program(name)
        let argv = user.map { ["/usr/bin/setpriv", "--reuid=\($0.uid)", "--regid=\($0.gid)", "--clear-groups", "--", program] } ?? [program]
        // Output to a file, not a pipe: pg_ctl leaves a server behind that would hold a pipe open.
        let output = directory + "/.\(name).out"
        FileManager.default.createFile(atPath: output, contents: nil)
        if let user { chown(output, user.uid, user.gid) }
        let status = try Spawn.run(argv + arguments, output: output)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)).map { "\n" + $0.split(separator: "\n").suffix(5).joined(separator: "\n") } ?? ""
            throw Failure(description: "\(name) failed (exit \(status)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))\(log)")
        }
        return text
    }
}
