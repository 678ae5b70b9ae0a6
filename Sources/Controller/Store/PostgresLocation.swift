import Foundation
import NIOSSL
import PostgresNIO

/// A PostgreSQL database named by a libpq-style URL:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require|verify-full&sslrootcert=FILE]`,
/// or through a unix socket, `postgres://USER@/DATABASE?host=/run/postgresql` (the socket's
/// directory, as libpq takes it).
struct PostgresLocation: Sendable, Equatable {
    enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case socket(path: String)
    }

    enum TLSMode: String, Sendable {
        case disable
        case require = "require"
        case verifyFull = "verify-full"
    }

    let endpoint: Endpoint
    let username: String
    let password: String?
    let database: String
    let tls: TLSMode
    let rootCertificate: String?

    /// For messages: never the password.
    var display: String {
        switch endpoint {
        case .tcp(let host, let port): "\(host):\(port)/\(database)"
        case .socket(let path): "\(path) (\(database))"
        }
    }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    init(url text: String) throws {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"), let components = URLComponents(string: text) else {
            throw Invalid(description: "a PostgreSQL store is a URL like postgres://user:password@host:5432/database (got '\(text.prefix(12))…')")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let known: Set<String> = ["host", "port", "sslmode", "sslrootcert", "user", "password", "dbname"]
        if let unknown = query.keys.first(where: { !known.contains($0) }) {
            throw Invalid(description: "unknown PostgreSQL URL parameter '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        let port = try components.port ?? query["port"].map { value in
            guard let port = Int(value), (1...65_535).contains(port) else { throw Invalid(description: "port '\(value)' is not a TCP port") }
            return port
        } ?? 5432
        guard let username = components.user.flatMap({ $0.removingPercentEncoding }) ?? query["user"], !username.isEmpty else {
            throw Invalid(description: "the PostgreSQL URL names no user (postgres://USER@…)")
        }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard let database = (path.isEmpty ? query["dbname"] : path.removingPercentEncoding), !database.isEmpty else {
            throw Invalid(description: "the PostgreSQL URL names no database (…/DATABASE)")
        }
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            endpoint = .socket(path: socketDirectory + "/.s.PGSQL.\(port)")
        } else if let host = components.host, !host.isEmpty {
            endpoint = .tcp(host: host, port: port)
        } else {
            throw Invalid(description: "the PostgreSQL URL names no host (…@HOST:PORT/…, or ?host=/socket/directory)")
        }
        guard let tls = TLSMode(rawValue: query["sslmode"] ?? "disable") else {
            throw Invalid(description: "sslmode must be disable, require or verify-full")
        }
        self.username = username
        self.password = components.password.flatMap { $0.removingPercentEncoding } ?? query["password"]
        self.database = database
        self.tls = tls
        self.rootCertificate = query["sslrootcert"]
    }

    func configuration() throws -> PostgresConnection.Configuration {
        switch endpoint {
        case .socket(let path):
            return PostgresConnection.Configuration(unixSocketPath: path, username: username, password: password, database: database)
        case .tcp(let host, let port):
            var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password,
                                                                 database: database, tls: .disable)
            switch tls {
            case .disable: break
            case .require:
                var client = TLSConfiguration.makeClientConfiguration()
                client.certificateVerification = .none
                configuration.tls = .require(try NIOSSLContext(configuration: client))
            case .verifyFull:
                var client = TLSConfiguration.makeClientConfiguration()
                if let rootCertificate { client.trustRoots = .file(rootCertificate) }
                configuration.tls = .require(try NIOSSLContext(configuration: client))
            }
            return configuration
        }
    }
}

/// Where a controller keeps its state.
enum StoreLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    /// `sqlite` (the file in the state directory), a `postgres://` URL, or `@FILE` holding one
    /// (a credential file, so that the password stays out of unit files and process lists).
    init(_ text: String, stateDatabase: String) throws {
        var text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("@") {
            let path = String(text.dropFirst())
            do {
                text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw PostgresLocation.Invalid(description: "cannot read the store URL from '\(path)': \(error.localizedDescription)")
            }
        }
        if text.isEmpty || text == "sqlite" {
            self = .sqlite(path: stateDatabase)
        } else {
            self = .postgres(try PostgresLocation(url: text))
        }
    }
}
