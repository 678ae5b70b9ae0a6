import Foundation
import Shared

/// Several controllers on one PostgreSQL database: each keeps in memory what it serves from
/// (permissions, certificates, pins, links, sessions) and reads it again when another one
/// announces a change; each then enforces it on the routers and tunnelers connected to it.
extension ControlPlane {
    /// What a resync read from the store, off the control loop.
    struct SharedState: Sendable {
        let links: [LinkRow]
        let controllers: [ControllerRow]
        let sessions: [SessionClaims]
        let revoked: [String: Date]
    }

    /// Reads the shared state again; run it off the loop (a large network's policies take a while).
    static func readSharedState(store: Store, policies: PolicyState, certificates: CertificateRegistry, pins: ToolPins,
                                records: SessionRecords) throws -> SharedState {
        try policies.rebuild()
        try certificates.reload()
        try pins.reload()
        let (links, controllers) = try store.read { db in
            (try db.all(LinkRow.self), try db.all(ControllerRow.self, orderBy: "name"))
        }
        let (sessions, revoked) = try records.load()
        return SharedState(links: links, controllers: controllers, sessions: sessions, revoked: revoked)
    }

    /// Applies a resync on the loop: links and controllers as read, sessions other controllers
    /// signed become known here (so a policy change revokes them too, even if their issuer is
    /// gone), then everything the current policies and certificates no longer allow is revoked.
    func apply(_ shared: SharedState, reason: String) {
        reloadLinks(shared.links)
        setControllers(shared.controllers)
        for claims in shared.sessions where sessions[claims.sid] == nil { sessions[claims.sid] = IssuedSession(claims: claims) }
        for (sid, expires) in shared.revoked where revoked[sid] == nil { revoked[sid] = expires }
        certificatesChanged(identities: [], reason: reason)
        enforcePolicies(reason: reason)
    }

    /// Tells every connected router and tunneler the controllers there are, when that changed.
    func setControllers(_ rows: [ControllerRow]) {
        let addresses = rows.map(\.controlAddress)
        let previous = controllerAddresses
        guard addresses != previous else { return }
        controllerAddresses = addresses
        // Alone from the start, nobody needs telling; down to one, those who knew several do.
        guard addresses.count > 1 || previous.count > 1 else { return }
        for entry in connected.values { entry.control.notify(.controllers(addresses: addresses)) }
    }
}
