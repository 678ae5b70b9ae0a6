import Foundation
import Hummingbird
import Shared

/// The management REST API (documented in docs/openapi.yaml). JSON in, JSON out; every change
/// to identities, services, routers or policies rebuilds the permission snapshot and lets the
/// control plane revoke whatever is no longer allowed.
struct ManagementAPI: Sendable {
    let store: Store
    let policies: PolicyState
    let enrollment: Enrollment
    let audit: AuditLog
    let admins: AdminSessions
    let plane: LoopBound<ControlPlane>
    let pins: ToolPins
    let usage: UsageLedger
    let certificates: CertificateRegistry
    /// Tells the other controllers on the same database what changed here.
    let changes: StoreChanges
    /// This controller's name among the network's controllers.
    let controllerName: String

    func register(on router: Router<BasicRequestContext>) {
        router.get("/v1/health") { _, _ in ["status": "ok"] }
        // Public keys only: what an upstream needs to verify a gateway's statement about a call.
        let assertionKeys = AssertionKeys(store: store)
        router.get("/v1/jwks") { _, _ in JWKSResponse(set: try assertionKeys.keySet()) }
        router.get("/.well-known/jwks.json") { _, _ in JWKSResponse(set: try assertionKeys.keySet()) }
        router.get("/v1/ca") { _, _ in enrollment.secrets.caPEM }
        router.post("/v1/login") { request, context in
            try admins.login(try await request.decode(as: LoginRequest.self, context: context))
        }
        router.post("/v1/enroll") { request, context in
            let body = try await request.decode(as: EnrollmentRequest.self, context: context)
            do {
                let redeemed = try enrollment.redeem(body)
                // A new router's certificate goes into every roster; replaced certificates stop working.
                certificatesChanged(identities: [], reason: "\(redeemed.kind.rawValue) '\(redeemed.subject)' enrolled")
                return redeemed.response
            } catch let error as TokenError {
                throw HTTPError(.unauthorized, message: error.description)
            } catch let error as PKIError {
                throw HTTPError(.badRequest, message: error.description)
            }
        }

        registerConsole(on: router)
        let admin = router.group("v1").add(middleware: AdminAuthMiddleware(sessions: admins))
        registerIdentities(admin)
        registerRouters(admin)
        registerServices(admin)
        registerPolicies(admin)
        registerLinks(admin)
        registerPeople(admin)
        registerControllers(admin)
        registerLLM(admin)
        registerMCP(admin)
        admin.get("network") { _, _ in try await networkStatus() }
        admin.get("audit") { request, _ in
            let query = request.uri.queryParameters
            let limit = query.get("limit", as: Int.self) ?? 100
            func date(_ key: String) throws -> Date? {
                guard let text = query.get(key) else { return nil }
                guard let date = ISO8601DateFormatter().date(from: text) else {
                    throw HTTPError(.badRequest, message: "\(key) must be an ISO 8601 time such as 2026-11-25T17:00:00Z")
                }
                return date
            }
            return try audit.events(limit: min(max(limit, 1), 10_000), type: query.get("type"), identity: query.get("identity"),
                                    user: query.get("user"), service: query.get("service"), circuit: query.get("circuit", as: UInt64.self),
                                    since: try date("since"), until: try date("until"), trace: try Self.traceID(query.get("trace")))
        }
        admin.get("audit/verify") { _, _ in
            let (rows, brokenAt) = try audit.verifyChain()
            return AuditVerification(rows: rows, intact: brokenAt == nil, brokenAtSeq: brokenAt)
        }
    }

    /// A W3C trace id (32 lowercase hex digits), checked.
    static func traceID(_ value: String?) throws -> String? {
        guard let value, !value.isEmpty else { return nil }
        guard value.utf8.count == 32, value.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw HTTPError(.badRequest, message: "trace must be a trace id: 32 lowercase hex digits")
        }
        return value
    }

    func networkStatus() async throws -> NetworkStatus {
        let plane = self.plane
        return try await plane.loop.submit { plane.value.status() }
    }

    private func registerIdentities(_ group: RouterGroup<BasicRequestContext>) {
        group.post("identities") { request, context in
            EditedResponse(status: .created, response: try createIdentity(try await request.decode(as: IdentitySpec.self, context: context)))
        }
        group.put("identities/:name") { request, context in
            let name = try context.parameters.require("name")
            let spec = try await request.decode(as: IdentitySpec.self, context: context)
            return try updateIdentityRoles(name, roles: spec.roles)
        }
        group.get("identities") { _, _ in
            try store.read { try $0.all(IdentityRow.self, orderBy: "name") }.map { $0.record(token: nil) }
        }
        group.delete("identities/:name") { _, context in
            try deleteIdentity(try context.parameters.require("name"))
            return Response(status: .noContent)
        }
        group.post("identities/:name/revoke") { _, context in
            let name = try context.parameters.require("name")
            guard try store.read({ try $0.one(IdentityRow.self, key: name) }) != nil else {
                throw HTTPError(.notFound, message: "no identity named '\(name)'")
            }
            let revoked = try revoke(name, kind: .identity, reason: "identity '\(name)' revoked by an operator")
            return RevocationResult(entity: name, revokedCertificates: revoked)
        }
        group.post("identities/:name/enrollment-token") { _, context in
            let name = try context.parameters.require("name")
            guard var row = try store.read({ try $0.one(IdentityRow.self, key: name) }) else {
                throw HTTPError(.notFound, message: "no identity named '\(name)'")
            }
            row.enrolled = false
            return row.record(token: try enrollment.issueToken(for: name, kind: .identity))
        }
    }

    private func registerRouters(_ group: RouterGroup<BasicRequestContext>) {
        group.post("routers") { request, context in
            let spec = try await request.decode(as: RouterSpec.self, context: context)
            try Validation.name(spec.name, kind: "router")
            try Validation.attributes(spec.roles)
            let row = RouterRow(name: spec.name, roles: spec.roles, enrolled: false, createdAt: Date())
            try insert(row, kind: "router", name: spec.name)
            let token = try enrollment.issueToken(for: spec.name, kind: .router)
            try changed("router '\(spec.name)' created")
            return EditedResponse(status: .created, response: row.record(token: token, status: nil))
        }
        group.put("routers/:name") { request, context in
            let name = try context.parameters.require("name")
            let spec = try await request.decode(as: RouterSpec.self, context: context)
            try Validation.attributes(spec.roles)
            let row = try store.write { db -> RouterRow? in
                guard var row = try db.one(RouterRow.self, key: name) else { return nil }
                row.roles = spec.roles
                try db.update(row)
                return row
            }
            guard let row else { throw HTTPError(.notFound, message: "no router named '\(name)'") }
            try changed("router '\(name)' roles set to \(spec.roles)")
            return row.record(token: nil, status: nil)
        }
        group.get("routers") { _, _ in
            let rows = try store.read { try $0.all(RouterRow.self, orderBy: "name") }
            let status = try await networkStatus()
            let plane = self.plane
            let addresses = try await plane.loop.submit { Dictionary(uniqueKeysWithValues: rows.map { ($0.name, plane.value.edgeAddress(of: $0.name)) }) }
            return rows.map { row in
                var record = row.record(token: nil, status: status)
                record.edgeAddress = addresses[row.name] ?? nil
                return record
            }
        }
        group.delete("routers/:name") { _, context in
            let name = try context.parameters.require("name")
            try delete(RouterRow.self, name: name, kind: "router")
            try revoke(name, kind: .router, reason: "router '\(name)' deleted")
            try changed("router '\(name)' deleted")
            return Response(status: .noContent)
        }
        group.post("routers/:name/revoke") { _, context in
            let name = try context.parameters.require("name")
            guard try store.read({ try $0.one(RouterRow.self, key: name) }) != nil else {
                throw HTTPError(.notFound, message: "no router named '\(name)'")
            }
            let revoked = try revoke(name, kind: .router, reason: "router '\(name)' revoked by an operator")
            return RevocationResult(entity: name, revokedCertificates: revoked)
        }
        group.post("routers/:name/enrollment-token") { _, context in
            let name = try context.parameters.require("name")
            guard let row = try store.read({ try $0.one(RouterRow.self, key: name) }) else {
                throw HTTPError(.notFound, message: "no router named '\(name)'")
            }
            return row.record(token: try enrollment.issueToken(for: name, kind: .router), status: nil)
        }
    }

    private func registerServices(_ group: RouterGroup<BasicRequestContext>) {
        group.post("services") { request, context in
            let spec = try await request.decode(as: ServiceSpec.self, context: context)
            try createService(spec)
            return EditedResponse(status: .created, response: spec)
        }
        group.put("services/:name") { request, context in
            var spec = try await request.decode(as: ServiceSpec.self, context: context)
            spec.name = try context.parameters.require("name")
            try updateService(spec)
            return spec
        }
        group.get("services") { _, _ in
            try store.read { try $0.all(ServiceRow.self, orderBy: "name") }
                .map { ServiceSpec(name: $0.name, roles: $0.roles, configs: $0.configs) }
        }
        group.delete("services/:name") { _, context in
            try deleteService(try context.parameters.require("name"))
            return Response(status: .noContent)
        }
        group.post("configs") { request, context in
            let spec = try await request.decode(as: ConfigSpec.self, context: context)
            try createConfig(spec)
            return EditedResponse(status: .created, response: spec)
        }
        group.put("configs/:name") { request, context in
            var spec = try await request.decode(as: ConfigSpec.self, context: context)
            spec.name = try context.parameters.require("name")
            try updateConfig(spec)
            return spec
        }
        group.get("configs") { _, _ in
            try store.read { try $0.all(ConfigRow.self, orderBy: "name") }
                .map { ConfigSpec(name: $0.name, type: $0.type, data: $0.data) }
        }
        group.delete("configs/:name") { _, context in
            try deleteConfig(try context.parameters.require("name"))
            return Response(status: .noContent)
        }
    }

    private func registerPolicies(_ group: RouterGroup<BasicRequestContext>) {
        group.post("service-policies") { request, context in
            let spec = try await request.decode(as: ServicePolicySpec.self, context: context)
            try createServicePolicy(spec)
            return EditedResponse(status: .created, response: spec)
        }
        group.put("service-policies/:name") { request, context in
            var spec = try await request.decode(as: ServicePolicySpec.self, context: context)
            spec.name = try context.parameters.require("name")
            try updateServicePolicy(spec)
            return spec
        }
        group.get("service-policies") { _, _ in
            try store.read { try $0.all(ServicePolicyRow.self, orderBy: "name") }
                .map { ServicePolicySpec(name: $0.name, type: $0.type, identityRoles: $0.identityRoles, serviceRoles: $0.serviceRoles) }
        }
        group.delete("service-policies/:name") { _, context in
            try deleteServicePolicy(try context.parameters.require("name"))
            return Response(status: .noContent)
        }
        group.post("edge-router-policies") { request, context in
            let spec = try await request.decode(as: EdgeRouterPolicySpec.self, context: context)
            try Validation.name(spec.name, kind: "edge-router policy")
            try Validation.roles(spec.identityRoles, field: "identityRoles")
            try Validation.roles(spec.routerRoles, field: "routerRoles")
            try insert(EdgeRouterPolicyRow(name: spec.name, identityRoles: spec.identityRoles, routerRoles: spec.routerRoles),
                       kind: "edge-router policy", name: spec.name)
            try changed("edge-router policy '\(spec.name)' created")
            return EditedResponse(status: .created, response: spec)
        }
        group.get("edge-router-policies") { _, _ in
            try store.read { try $0.all(EdgeRouterPolicyRow.self, orderBy: "name") }
                .map { EdgeRouterPolicySpec(name: $0.name, identityRoles: $0.identityRoles, routerRoles: $0.routerRoles) }
        }
        group.delete("edge-router-policies/:name") { _, context in
            let name = try context.parameters.require("name")
            try delete(EdgeRouterPolicyRow.self, name: name, kind: "edge-router policy")
            try changed("edge-router policy '\(name)' deleted")
            return Response(status: .noContent)
        }
        group.post("service-edge-router-policies") { request, context in
            let spec = try await request.decode(as: ServiceEdgeRouterPolicySpec.self, context: context)
            try Validation.name(spec.name, kind: "service-edge-router policy")
            try Validation.roles(spec.serviceRoles, field: "serviceRoles")
            try Validation.roles(spec.routerRoles, field: "routerRoles")
            try insert(ServiceEdgeRouterPolicyRow(name: spec.name, serviceRoles: spec.serviceRoles, routerRoles: spec.routerRoles),
                       kind: "service-edge-router policy", name: spec.name)
            try changed("service-edge-router policy '\(spec.name)' created")
            return EditedResponse(status: .created, response: spec)
        }
        group.get("service-edge-router-policies") { _, _ in
            try store.read { try $0.all(ServiceEdgeRouterPolicyRow.self, orderBy: "name") }
                .map { ServiceEdgeRouterPolicySpec(name: $0.name, serviceRoles: $0.serviceRoles, routerRoles: $0.routerRoles) }
        }
        group.delete("service-edge-router-policies/:name") { _, context in
            let name = try context.parameters.require("name")
            try delete(ServiceEdgeRouterPolicyRow.self, name: name, kind: "service-edge-router policy")
            try changed("service-edge-router policy '\(name)' deleted")
            return Response(status: .noContent)
        }
    }

    private func registerLinks(_ group: RouterGroup<BasicRequestContext>) {
        group.post("links") { request, context in
            let spec = try await request.decode(as: LinkSpec.self, context: context)
            try Validation.name(spec.name, kind: "link")
            guard spec.a != spec.b else { throw HTTPError(.badRequest, message: "a link joins two different routers") }
            guard (spec.cost ?? 0) >= 0 else { throw HTTPError(.badRequest, message: "link cost must not be negative") }
            let known = try store.read { db in try [spec.a, spec.b].filter { try db.one(RouterRow.self, key: $0) == nil } }
            guard known.isEmpty else { throw HTTPError(.badRequest, message: "unknown router(s): \(known.joined(separator: ", "))") }
            try insert(LinkRow(name: spec.name, a: spec.a, b: spec.b, cost: spec.cost ?? 0), kind: "link", name: spec.name)
            try await linksChanged()
            return EditedResponse(status: .created, response: spec)
        }
        group.get("links") { _, _ in
            try store.read { try $0.all(LinkRow.self, orderBy: "name") }.map { LinkSpec(name: $0.name, a: $0.a, b: $0.b, cost: $0.cost) }
        }
        group.delete("links/:name") { _, context in
            let name = try context.parameters.require("name")
            try delete(LinkRow.self, name: name, kind: "link")
            try await linksChanged()
            return Response(status: .noContent)
        }
    }

    private func registerControllers(_ group: RouterGroup<BasicRequestContext>) {
        group.get("controllers") { _, _ in
            try store.read { try $0.all(ControllerRow.self, orderBy: "name") }
                .map { ControllerRecord(name: $0.name, controlAddress: $0.controlAddress, apiAddress: $0.apiAddress, startedAt: $0.startedAt) }
        }
        // A controller taken out of service for good: routers and tunnelers stop dialing it.
        // (Starting it again registers it again.)
        group.delete("controllers/:name") { _, context in
            let name = try context.parameters.require("name")
            guard name != controllerName else {
                throw HTTPError(.conflict, message: "'\(name)' is the controller answering: stop it, then remove it through another one")
            }
            try delete(ControllerRow.self, name: name, kind: "controller")
            changes.announce("controllers")
            let rows = try store.read { try $0.all(ControllerRow.self, orderBy: "name") }
            let plane = self.plane
            plane.loop.execute { plane.value.setControllers(rows) }
            return Response(status: .noContent)
        }
    }

    private func registerPeople(_ group: RouterGroup<BasicRequestContext>) {
        group.post("external-jwt-signers") { request, context in
            let spec = try await request.decode(as: ExternalJWTSignerSpec.self, context: context)
            try Validation.name(spec.name, kind: "external JWT signer")
            if let problem = spec.problem() { throw HTTPError(.badRequest, message: "external JWT signer '\(spec.name)': \(problem)") }
            let clash = try store.read { try $0.one(ExternalJWTSignerRow.self, where: "issuer = ?", [spec.issuer]) }
            if let clash { throw HTTPError(.conflict, message: "signer '\(clash.name)' already trusts issuer '\(spec.issuer)': one signer per issuer") }
            try insert(ExternalJWTSignerRow(spec), kind: "external JWT signer", name: spec.name)
            try changed("external JWT signer '\(spec.name)' created (issuer \(spec.issuer))")
            return EditedResponse(status: .created, response: spec)
        }
        group.get("external-jwt-signers") { _, _ in
            try store.read { try $0.all(ExternalJWTSignerRow.self, orderBy: "name") }.map(\.spec)
        }
        group.delete("external-jwt-signers/:name") { _, context in
            let name = try context.parameters.require("name")
            try delete(ExternalJWTSignerRow.self, name: name, kind: "external JWT signer")
            try changed("external JWT signer '\(name)' deleted")
            return Response(status: .noContent)
        }
        group.post("delegation-policies") { request, context in
            let spec = try await request.decode(as: DelegationPolicySpec.self, context: context)
            try Validation.name(spec.name, kind: "delegation policy")
            try Validation.roles(spec.agentRoles, field: "agentRoles")
            try Validation.roles(spec.userRoles, field: "userRoles")
            try insert(DelegationPolicyRow(name: spec.name, agentRoles: spec.agentRoles, userRoles: spec.userRoles),
                       kind: "delegation policy", name: spec.name)
            try changed("delegation policy '\(spec.name)' created")
            return EditedResponse(status: .created, response: spec)
        }
        group.get("delegation-policies") { _, _ in
            try store.read { try $0.all(DelegationPolicyRow.self, orderBy: "name") }.map(\.spec)
        }
        group.delete("delegation-policies/:name") { _, context in
            let name = try context.parameters.require("name")
            try delete(DelegationPolicyRow.self, name: name, kind: "delegation policy")
            try changed("delegation policy '\(name)' deleted")
            return Response(status: .noContent)
        }
    }

    private func linksChanged() async throws {
        let rows = try store.read { try $0.all(LinkRow.self) }
        changes.announce("links")
        let plane = self.plane
        plane.loop.execute { plane.value.reloadLinks(rows) }
    }

    // MARK: helpers

    func insert<Row: StoreRecord>(_ row: Row, kind: String, name: String) throws {
        do {
            try store.write { try $0.insert(row) }
        } catch is StoreConflict {
            throw HTTPError(.conflict, message: "\(kind) '\(name)' already exists")
        }
    }

    func delete<Row: StoreRecord>(_ type: Row.Type, name: String, kind: String) throws {
        let deleted = try store.write { try $0.delete(Row.self, key: name) }
        guard deleted else { throw HTTPError(.notFound, message: "no \(kind) named '\(name)'") }
    }

    /// Rebuilds permissions, records the change and lets the control plane enforce it.
    /// Revokes `name`'s certificates and its enrollment tokens not yet used; it must enroll
    /// again to connect. Its live connections close, here and at every router.
    @discardableResult
    func revoke(_ name: String, kind: PeerKind, reason: String) throws -> [String] {
        let revoked = try store.write { db in
            try db.execute("DELETE FROM enrollment WHERE subject = ? AND kind = ? AND usedAt IS NULL", [name, kind.rawValue])
            if kind == .identity {
                try db.execute("UPDATE identity SET enrolled = ? WHERE name = ?", [false, name])
                try db.execute("DELETE FROM assertionKey WHERE identity = ?", [name])
            }
            if kind == .router { try db.execute("UPDATE router SET enrolled = ? WHERE name = ?", [false, name]) }
            return try certificates.revokeAll(name, kind: kind, reason: reason, db: db)
        }
        audit.record(.certificateRevoked, identity: name, detail: "\(reason): \(revoked.count) certificate(s)")
        certificatesChanged(identities: kind == .identity ? [name] : [], reason: reason)
        return revoked
    }

    private func certificatesChanged(identities: [String], reason: String) {
        changes.announce("certificates")
        let plane = self.plane
        plane.loop.execute { plane.value.certificatesChanged(identities: identities, reason: reason) }
    }

    func changed(_ reason: String) throws {
        try policies.rebuild()
        audit.record(.policyChanged, detail: reason)
        changes.announce("policies")
        let plane = self.plane
        plane.loop.execute { plane.value.enforcePolicies(reason: reason) }
    }
}

extension IdentityRow {
    func record(token: String?) -> IdentityRecord {
        IdentityRecord(name: name, roles: roles, enrolled: enrolled, createdAt: createdAt, enrollmentToken: token)
    }
}

extension RouterRow {
    func record(token: String?, status: NetworkStatus?) -> RouterRecord {
        RouterRecord(name: name, roles: roles, enrolled: enrolled, online: status?.routers.contains(name) ?? false,
                     edgeAddress: nil, createdAt: createdAt, enrollmentToken: token)
    }
}

extension IdentityRecord: ResponseEncodable {}
extension RevocationResult: ResponseEncodable {}
extension RouterRecord: ResponseEncodable {}
extension ServiceSpec: ResponseEncodable {}
extension ConfigSpec: ResponseEncodable {}
extension ServicePolicySpec: ResponseEncodable {}
extension EdgeRouterPolicySpec: ResponseEncodable {}
extension ServiceEdgeRouterPolicySpec: ResponseEncodable {}
extension NetworkStatus: ResponseEncodable {}
extension LinkSpec: ResponseEncodable {}
extension ExternalJWTSignerSpec: ResponseEncodable {}
extension DelegationPolicySpec: ResponseEncodable {}

/// A JWK set, served as `application/jwk-set+json`.
struct JWKSResponse: ResponseGenerator {
    let set: JSONValue
    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/jwk-set+json", .cacheControl: "max-age=60"],
                 body: .init(byteBuffer: ByteBuffer(bytes: set.encoded())))
    }
}

struct AuditVerification: Codable, ResponseEncodable {
    var rows: Int
    var intact: Bool
    var brokenAtSeq: Int64?
}
extension LoginResponse: ResponseEncodable {}
extension EnrollmentResponse: ResponseEncodable {}
extension AuditEvent: ResponseEncodable {}
extension ToolPin: ResponseEncodable {}
extension ToolApprovalResult: ResponseEncodable {}
