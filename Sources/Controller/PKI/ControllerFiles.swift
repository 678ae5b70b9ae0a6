import Crypto
import Foundation
import Logging
import Shared
import X509

enum ControllerLog {
    static let logger = Logger(label: "portless.controller")
}

/// Where the controller keeps its state, and what `init` writes there.
struct ControllerConfig: Codable {
    var network: String
    var apiAddress: SocketAddress
    var controlAddress: SocketAddress
    /// Limits an operator may tune (controller.json, "limits"); defaults otherwise.
    var limits: ControllerLimits?
    /// This controller's name among the network's controllers ("controller" when alone).
    var name: String?
    /// Where the state is kept: nil or "sqlite" for the file in the state directory, a
    /// `postgres://` URL, or `@FILE` holding one (see StoreLocation).
    var store: String?

    func storeLocation(files: ControllerFiles, override: String? = nil) throws -> StoreLocation {
        try StoreLocation(override ?? store ?? "sqlite", stateDatabase: files.database)
    }

    /// The management API and enrollment are served over TLS only (the controller certificate).
    var apiURL: String { "https://\(apiAddress)" }
}

/// What one identity may hold of the controller's resources.
struct ControllerLimits: Codable, Sendable {
    /// Circuits one identity may have open at once; a dial beyond it is refused, saying so.
    var circuitsPerIdentity = 1024
}

struct ControllerFiles {
    let directory: String
    var config: String { directory + "/controller.json" }
    var database: String { directory + "/controller.db" }
    var caCertificate: String { directory + "/ca.pem" }
    var caKey: String { directory + "/ca.key" }
    var signingKey: String { directory + "/signing.key" }
    var serverCertificate: String { directory + "/controller.pem" }
    var serverKey: String { directory + "/controller.key" }
    var adminCredential: String { directory + "/admin.json" }
    /// The audit trail's HMAC key: outside the database, so whoever can write the database cannot re-sign it.
    var auditKey: String { directory + "/audit.key" }
}

/// What `init` hands the operator: the admin login, and the CA that the CLI pins to recognise
/// this controller over TLS.
struct AdminCredential: Codable {
    var username: String
    var password: String
    var ca: String
}

/// The controller's secrets and derived material, loaded once at start.
struct ControllerSecrets: Sendable {
    let authority: CertificateAuthority
    let caPEM: String
    let caSHA256: String
    nonisolated(unsafe) let signingKey: Curve25519.Signing.PrivateKey  // safe: immutable key value, never mutated
    let sessionKeySHA256: String
    let controlCredentials: TLSCredentials
    nonisolated(unsafe) let auditKey: SymmetricKey  // safe: an immutable key value, never mutated

    init(files: ControllerFiles) throws {
        caPEM = try Files.read(files.caCertificate)
        authority = try CertificateAuthority(certificatePEM: caPEM, privateKeyPEM: Files.read(files.caKey))
        caSHA256 = try Fingerprint.certificate(pem: caPEM)
        guard let raw = Data(base64Encoded: try Files.read(files.signingKey).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw FileError.invalid(path: files.signingKey, reason: "not base64")
        }
        signingKey = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        sessionKeySHA256 = Fingerprint.sha256(signingKey.publicKey.rawRepresentation)
        guard let auditBytes = Data(base64Encoded: try Files.read(files.auditKey).trimmingCharacters(in: .whitespacesAndNewlines)), auditBytes.count == 32 else {
            throw FileError.invalid(path: files.auditKey, reason: "not a base64 256-bit key")
        }
        auditKey = SymmetricKey(data: auditBytes)
        controlCredentials = TLSCredentials(certificatePEM: try Files.read(files.serverCertificate),
                                            privateKeyPEM: try Files.read(files.serverKey), caPEM: caPEM)
    }

    /// Creates a network: CA, session-signing key, the control listener's certificate, the
    /// database and an admin credential.
    static func initialize(files: ControllerFiles, config: ControllerConfig) throws -> AdminCredential {
        if FileManager.default.fileExists(atPath: files.config) {
            throw InitError.alreadyInitialized(files.directory)
        }
        try Files.createDirectory(files.directory)
        let authority = try CertificateAuthority.create(networkName: config.network)
        try Files.write(try authority.certificatePEM, to: files.caCertificate)
        try Files.write(authority.privateKeyPEM, to: files.caKey, privateFile: true)
        try Files.write(Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString(), to: files.signingKey, privateFile: true)
        try Files.write(AuditLog.newKey(), to: files.auditKey, privateFile: true)
        let serverKey = IdentityKey()
        let serverCertificate = try authority.issue(publicKey: .init(serverKey.privateKey.publicKey), name: "controller", kind: .controller)
        try Files.write(try serverCertificate.serializeAsPEM().pemString, to: files.serverCertificate)
        try Files.write(serverKey.pem, to: files.serverKey, privateFile: true)

        let store = try Store(try config.storeLocation(files: files))
        defer { store.close() }
        guard try store.read({ try $0.all(AdminRow.self) }).isEmpty else {
            throw InitError.databaseInUse("the store already holds a network: add this controller to it with 'init --join'")
        }
        let password = randomToken(bytes: 18)
        let salt = randomToken(bytes: 12)
        try store.write { db in
            try db.insert(AdminRow(username: "admin", salt: salt, passwordHash: passwordHash(password, salt: salt)))
        }
        let credential = AdminCredential(username: "admin", password: password, ca: try authority.certificatePEM)
        try Files.writeJSON(credential, to: files.adminCredential, privateFile: true)
        try Files.writeJSON(config, to: files.config)
        return credential
    }

    /// Adds a controller to the network of the controller at `existing` (its state directory,
    /// or a copy of its secrets): the same CA, session-signing and audit keys and admin
    /// credential, its own control certificate, and the same PostgreSQL store.
    static func join(files: ControllerFiles, config: ControllerConfig, existing: ControllerFiles) throws {
        if FileManager.default.fileExists(atPath: files.config) {
            throw InitError.alreadyInitialized(files.directory)
        }
        let location = try config.storeLocation(files: files)
        guard case .postgres = location else {
            throw InitError.databaseInUse("controllers of one network share a PostgreSQL store: give --store postgres://…")
        }
        try Files.createDirectory(files.directory)
        for (from, to) in [(existing.caCertificate, files.caCertificate), (existing.caKey, files.caKey), (existing.signingKey, files.signingKey),
                           (existing.auditKey, files.auditKey), (existing.adminCredential, files.adminCredential)] {
            try Files.write(try Files.read(from), to: to, privateFile: to != files.caCertificate)
        }
        let authority = try CertificateAuthority(certificatePEM: Files.read(files.caCertificate), privateKeyPEM: Files.read(files.caKey))
        let serverKey = IdentityKey()
        let serverCertificate = try authority.issue(publicKey: .init(serverKey.privateKey.publicKey), name: config.name ?? "controller", kind: .controller)
        try Files.write(try serverCertificate.serializeAsPEM().pemString, to: files.serverCertificate)
        try Files.write(serverKey.pem, to: files.serverKey, privateFile: true)
        let store = try Store(location)
        defer { store.close() }
        guard try !store.read({ try $0.all(AdminRow.self) }).isEmpty else {
            throw InitError.databaseInUse("the store holds no network yet: initialize the first controller without --join")
        }
        try Files.writeJSON(config, to: files.config)
    }
}

/// Admin passwords are generated (144 random bits), so a salted SHA-256 is enough to keep the
/// database from holding them in the clear.
func passwordHash(_ password: String, salt: String) -> String {
    Hex.encode(SHA256.hash(data: Data((salt + ":" + password).utf8)))
}

func randomToken(bytes: Int = 24) -> String {
    var generator = SystemRandomNumberGenerator()
    return Base64URL.encode((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
}

enum InitError: Error, CustomStringConvertible {
    case alreadyInitialized(String)
    case databaseInUse(String)
    var description: String {
        switch self {
        case .alreadyInitialized(let dir): return "\(dir) already holds a controller; refusing to overwrite its CA"
        case .databaseInUse(let why): return why
        }
    }
}
