import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Shared

/// Finds the person behind an agent's request: verifies the token the agent presented against
/// the controller's external JWT signers (signature, issuer, audience, expiry, not-before), maps
/// its claims to a name and role attributes, and checks that a delegation policy lets this agent
/// act for that person. It runs in the hosting gateway, on the enterprise side: nothing the
/// intercepting side says about a person is believed.
///
/// Keys: a signer's inline JWK set, or its JWKS URL, fetched on first use, kept for
/// `maxKeyAge`, and fetched again early when a token names a key id it does not know — at most
/// once per `refetchInterval`, so a stream of made-up key ids cannot hammer the identity provider.
///
/// An agent presents the same token on every call until it expires, so a token whose signature
/// held is remembered (at most `maxRemembered`, as JWT filters in proxies do): the next call
/// skips decoding it and checking its signature (an ECDSA or RSA verification per call before), while
/// every claim check (expiry, audience, name, attributes, delegation) runs each time. A token is
/// remembered only with the keys that verified it: a change of signers or keys, or keys due
/// for a refetch, and it is verified again.
public final class PersonVerifier: Sendable {
    public static let leeway: TimeInterval = 30
    static let refetchInterval: Duration = .seconds(30)
    static let maxKeyAge: Duration = .seconds(600)
    static let maxJWKSBytes = 1 << 20

    private struct Keys {
        var keys: [JSONWebKey]
        var fetchedAt: ContinuousClock.Instant
    }

    private struct State {
        var signers: [String: ExternalJWTSignerSpec] = [:]
        var delegations: [DelegationPolicySpec] = []
        var keys: [String: Keys] = [:]
        var lastFetch: [String: ContinuousClock.Instant] = [:]
        /// Tokens whose signature held, by their text, with the generation of keys that verified them.
        var verified: [String: (token: JSONWebToken, issuer: String, generation: UInt64)] = [:]
        /// Moves whenever a signer or a key set changes: what was verified before is verified again.
        var generation: UInt64 = 0

        mutating func keysChanged() {
            generation &+= 1
            verified.removeAll()
        }
    }

    static let maxRemembered = 4_096

    private let state = Locked(State())
    private let httpClient: HTTPClient
    private let logger: Logger

    public init(httpClient: HTTPClient = .shared, logger: Logger) {
        self.httpClient = httpClient
        self.logger = logger
    }

    /// The controller's current signers and delegation policies (from the gateway's view).
    public func update(signers: [ExternalJWTSignerSpec], delegations: [DelegationPolicySpec]) {
        state.withLock { state in
            let byIssuer = Dictionary(signers.map { ($0.issuer, $0) }, uniquingKeysWith: { first, _ in first })
            for (issuer, old) in state.signers where byIssuer[issuer] != old {
                state.keys.removeValue(forKey: issuer)
                state.lastFetch.removeValue(forKey: issuer)
            }
            if state.signers != byIssuer { state.keysChanged() }
            state.signers = byIssuer
            state.delegations = delegations
            for (issuer, signer) in byIssuer where state.keys[issuer] == nil {
                if let inline = signer.keys { state.keys[issuer] = Keys(keys: JSONWebKey.set(inline), fetchedAt: .now) }
            }
        }
    }

    /// The person an `Authorization` header names for `agent`: nil when it names nobody (no
    /// header, or a bearer value that is no JWT — an agent's placeholder API key), else the
    /// verified, delegated person or why not.
    public func person(authorization: String?, agent: String, agentAttributes: [String], now: Date = Date()) async -> Result<Person?, PersonTokenError> {
        guard let authorization, let token = Self.bearer(authorization), JSONWebToken.looksLikeToken(token) else { return .success(nil) }
        return await verify(String(token), agent: agent, agentAttributes: agentAttributes, now: now).map { $0 }
    }

    static func bearer(_ header: String) -> Substring? {
        let trimmed = header.drop { $0 == " " }
        guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " else { return nil }
        return trimmed.dropFirst(7).drop { $0 == " " }
    }

    public func verify(_ text: String, agent: String, agentAttributes: [String], now: Date = Date()) async -> Result<Person, PersonTokenError> {
        if let (verified, signer) = remembered(text) {
            return person(in: verified, signer: signer, agent: agent, agentAttributes: agentAttributes, now: now)
        }
        let token: JSONWebToken
        do { token = try JSONWebToken(parsing: text) } catch { return .failure(error) }
        guard let algorithm = token.algorithm else { return .failure(.malformed("its header has no 'alg'")) }
        if algorithm.lowercased() == "none" { return .failure(.unsigned) }
        guard JSONWebKey.algorithms.contains(algorithm) else { return .failure(.algorithmRefused(algorithm)) }
        guard let issuer = token.claims["iss"]?.stringValue else { return .failure(.missingClaim("iss")) }
        guard let (signer, generation) = state.withLock({ state in state.signers[issuer].map { ($0, state.generation) } }) else {
            return .failure(.untrustedIssuer(issuer))
        }

        let keys: [JSONWebKey]
        switch await candidateKeys(signer, kid: token.keyID) {
        case .failure(let error): return .failure(error)
        case .success(let found): keys = found.filter { $0.accepts(algorithm) }
        }
        guard !keys.isEmpty else { return .failure(.keyUnknown(issuer: issuer, kid: token.keyID)) }
        guard keys.contains(where: { $0.verifies(token) }) else { return .failure(.badSignature(issuer: issuer)) }
        remember(text, token: token, issuer: issuer, generation: generation)
        return person(in: token, signer: signer, agent: agent, agentAttributes: agentAttributes, now: now)
    }

    /// A token verified before under keys still current and fresh, and its signer.
    private func remembered(_ text: String) -> (JSONWebToken, ExternalJWTSignerSpec)? {
        state.withLock { state in
            guard let hit = state.verified[text], hit.generation == state.generation, let signer = state.signers[hit.issuer] else { return nil }
            if signer.jwksURL != nil {
                guard let keys = state.keys[hit.issuer], ContinuousClock.now - keys.fetchedAt < Self.maxKeyAge else { return nil }
            }
            return (hit.token, signer)
        }
    }

    private func remember(_ text: String, token: JSONWebToken, issuer: String, generation: UInt64) {
        state.withLock { state in
            // Keys changed while this one was being verified: it is not remembered under the new ones.
            guard generation == state.generation else { return }
            if state.verified.count >= Self.maxRemembered {
                let now = Date().timeIntervalSince1970
                state.verified = state.verified.filter { ($0.value.token.claims["exp"]?.numberValue ?? 0) + Self.leeway >= now }
                if state.verified.count >= Self.maxRemembered { state.verified.removeAll() }
            }
            state.verified[text] = (token, issuer, generation)
        }
    }

    /// The claim checks, on every call: the token's signature already held.
    private func person(in token: JSONWebToken, signer: ExternalJWTSignerSpec, agent: String, agentAttributes: [String],
                        now: Date) -> Result<Person, PersonTokenError> {
        let issuer = signer.issuer
        let claims = token.claims
        guard let exp = claims["exp"]?.numberValue else { return .failure(.missingClaim("exp")) }
        if now.timeIntervalSince1970 > exp + Self.leeway { return .failure(.expired(Date(timeIntervalSince1970: exp))) }
        if let nbf = claims["nbf"]?.numberValue, now.timeIntervalSince1970 + Self.leeway < nbf {
            return .failure(.notYetValid(Date(timeIntervalSince1970: nbf)))
        }
        let audiences = claims["aud"]?.stringValue.map { [$0] } ?? claims["aud"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard audiences.contains(signer.audience) else { return .failure(.wrongAudience(got: audiences, expected: signer.audience)) }
        let userClaim = signer.effectiveUserClaim
        guard let name = claims[userClaim]?.stringValue ?? claims[userClaim]?.intValue.map(String.init), (1...256).contains(name.utf8.count) else {
            return .failure(.missingClaim(userClaim))
        }
        var attributes: [String] = []
        for claim in signer.attributeClaims ?? [] {
            if let single = claims[claim]?.stringValue { attributes.append(single) }
            attributes += claims[claim]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        let person = Person(name: name, issuer: issuer, signer: signer.name, attributes: Array(Set(attributes.prefix(256))).sorted())
        let delegations = state.withLock { $0.delegations }
        guard DelegationPolicySpec.permits(delegations, agent: agent, agentAttributes: agentAttributes, person: person) else {
            return .failure(.notDelegated(agent: agent, person: name))
        }
        return .success(person)
    }

    /// The signer's keys that may match `kid`, fetching its JWKS when needed and allowed.
    private func candidateKeys(_ signer: ExternalJWTSignerSpec, kid: String?) async -> Result<[JSONWebKey], PersonTokenError> {
        let now = ContinuousClock.now
        let (cached, last) = state.withLock { ($0.keys[signer.issuer], $0.lastFetch[signer.issuer]) }
        let matching = { (keys: [JSONWebKey]) in kid == nil ? keys : keys.filter { $0.kid == kid || $0.kid == nil } }
        guard let url = signer.jwksURL else { return .success(matching(cached?.keys ?? [])) }
        let known = cached.map { !matching($0.keys).isEmpty } ?? false
        let fresh = cached.map { now - $0.fetchedAt < Self.maxKeyAge } ?? false
        let mayFetch = last.map { now - $0 >= Self.refetchInterval } ?? true
        if (known && fresh) || !mayFetch {
            return .success(matching(cached?.keys ?? []))
        }
        state.withLock { $0.lastFetch[signer.issuer] = now }
        do {
            let keys = try await fetch(url)
            state.withLock { state in
                state.keys[signer.issuer] = Keys(keys: keys, fetchedAt: .now)
                state.keysChanged()
            }
            return .success(matching(keys))
        } catch {
            logger.warning("JWKS not fetched", metadata: ["signer": "\(signer.name)", "url": "\(url)", "error": "\(error)"])
            if let cached { return .success(matching(cached.keys)) }
            return .failure(.keysUnavailable(issuer: signer.issuer, reason: "\(error)"))
        }
    }

    private func fetch(_ url: String) async throws -> [JSONWebKey] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/jwk-set+json, application/json")
        let response = try await httpClient.execute(request, timeout: .seconds(5))
        guard response.status == .ok else { throw JWKSError.status(Int(response.status.code)) }
        let body = try await response.body.collect(upTo: Self.maxJWKSBytes)
        let json = try body.withUnsafeReadableBytes { try JSONParser.parse($0) }
        return JSONWebKey.set(json)
    }

    enum JWKSError: Error, CustomStringConvertible {
        case status(Int)
        var description: String { if case .status(let code) = self { return "HTTP \(code)" }; return "" }
    }
}
