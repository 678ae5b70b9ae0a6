import Foundation
import Shared
import X509

struct CertificateRow: Codable, StoreRecord {
    static let table = "certificate"
    static let primaryKey = ["fingerprint"]
    var fingerprint: String
    var entity: String
    var kind: String
    var serial: String
    var issuedAt: Date
    var expiresAt: Date
    var revokedAt: Date?
    var reason: String?
}

/// Every certificate the network CA issued, and which are revoked. An entity holds one live
/// certificate: enrolling again revokes the one before, as do `revoke` and deleting the entity.
/// Revoked certificates are listed until they expire (after that they verify nowhere anyway).
/// Held in memory for the control loop's checks, written through to the store.
final class CertificateRegistry: Sendable {
    private struct State {
        var revoked: [String: Date] = [:]
        /// Router name → the fingerprint of its live certificate.
        var routers: [String: String] = [:]
    }
    private let store: Store
    private let state = Locked(State())

    init(store: Store) throws {
        self.store = store
        try reload()
    }

    /// Reads the registry again (another controller sharing the database issued or revoked some).
    func reload() throws {
        let rows = try store.read { try $0.all(CertificateRow.self, where: "expiresAt > ?", [Date()]) }
        var fresh = State()
        for row in rows {
            if row.revokedAt != nil { fresh.revoked[row.fingerprint] = row.expiresAt }
            else if row.kind == PeerKind.router.rawValue { fresh.routers[row.entity] = row.fingerprint }
        }
        state.withLock { $0 = fresh }
    }

    /// Records a certificate just issued to `entity`, revoking the ones it held before; returns those.
    @discardableResult
    func issued(_ certificate: Certificate, to entity: String, kind: PeerKind, db: any StoreConnection) throws -> [String] {
        let fingerprint = try Fingerprint.certificate(certificate)
        let before = try revokeAll(entity, kind: kind, reason: "replaced by a new enrollment", db: db)
        try db.insert(CertificateRow(fingerprint: fingerprint, entity: entity, kind: kind.rawValue, serial: certificate.serialNumber.description,
                                     issuedAt: certificate.notValidBefore, expiresAt: certificate.notValidAfter, revokedAt: nil, reason: nil))
        if kind == .router { state.withLock { $0.routers[entity] = fingerprint } }
        return before
    }

    /// Revokes every live certificate of `entity`; returns their fingerprints.
    @discardableResult
    func revokeAll(_ entity: String, kind: PeerKind, reason: String, db: any StoreConnection) throws -> [String] {
        let now = Date()
        let live = try db.all(CertificateRow.self, where: "entity = ? AND kind = ? AND revokedAt IS NULL", [entity, kind.rawValue])
        for var row in live {
            row.revokedAt = now
            row.reason = reason
            try db.update(row)
        }
        state.withLock { state in
            for row in live { state.revoked[row.fingerprint] = row.expiresAt }
            if kind == .router { state.routers.removeValue(forKey: entity) }
        }
        return live.map(\.fingerprint)
    }

    func isRevoked(_ fingerprint: String) -> Bool { state.withLock { $0.revoked[fingerprint] != nil } }

    /// Revoked certificates not yet expired: what routers must refuse.
    var revoked: [String] {
        state.withLock { state in
            let now = Date()
            state.revoked = state.revoked.filter { $0.value > now }
            return state.revoked.keys.sorted()
        }
    }

    /// Router name → its live certificate's fingerprint: which routers may link, with which certificate.
    var routers: [String: String] { state.withLock { $0.routers } }

    func list(entity: String?) throws -> [CertificateRow] {
        try store.read { db in
            try db.all(CertificateRow.self, where: entity == nil ? nil : "entity = ?", entity.map { [$0] } ?? [], orderBy: "issuedAt DESC")
        }
    }
}
