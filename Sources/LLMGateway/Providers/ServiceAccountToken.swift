import _CryptoExtras
import Crypto
import Foundation
import GatewayKit
import NIOHTTP1
import Shared

/// A Google OAuth access token minted from a service-account key: an RS256-signed JWT
/// (iss = the account, scope = cloud-platform, aud = the token URI) exchanged at the token
/// endpoint, cached until a minute before it expires.
actor ServiceAccountToken {
    private let keyFile: String
    private let tokenURL: String?
    private let provider: String
    private var cached: (token: String, expires: Date)?

    init(keyFile: String, tokenURL: String?, provider: String) {
        self.keyFile = keyFile
        self.tokenURL = tokenURL
        self.provider = provider
    }

    func token(deadline: Duration) async throws -> String {
        if let cached, cached.expires > Date().addingTimeInterval(60) { return cached.token }
        let key: JSONValue
        do { key = try JSONValue.parse(Data(try Files.read(keyFile).utf8)) } catch {
            throw ProviderError.configuration("provider '\(provider)': cannot read service account key \(keyFile): \(error)")
        }
        guard let email = key["client_email"]?.stringValue, let pem = key["private_key"]?.stringValue else {
            throw ProviderError.configuration("provider '\(provider)': \(keyFile) has no client_email or private_key")
        }
        let audience = tokenURL ?? key["token_uri"]?.stringValue ?? "https://oauth2.googleapis.com/token"
        let assertion = try Self.assertion(email: email, pem: pem, keyID: key["private_key_id"]?.stringValue, audience: audience)
        let http = ProviderHTTP(provider: provider)
        let body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(assertion)"
        let response = try await http.json(http.request(audience, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Data(body.utf8)),
                                           deadline: deadline)
        guard let token = response["access_token"]?.stringValue else {
            throw ProviderError.malformed("provider '\(provider)': the token endpoint returned no access_token")
        }
        cached = (token, Date().addingTimeInterval(TimeInterval(response["expires_in"].map { $0.count(limit: 86_400) } ?? 3600)))
        return token
    }

    static func assertion(email: String, pem: String, keyID: String?, audience: String, now: Date = Date()) throws -> String {
        var header: [String: JSONValue] = ["alg": .string("RS256"), "typ": .string("JWT")]
        if let keyID { header["kid"] = .string(keyID) }
        let issued = Double(Int(now.timeIntervalSince1970))
        let claims: JSONValue = .object(["iss": .string(email), "scope": .string("https://www.googleapis.com/auth/cloud-platform"),
                                         "aud": .string(audience), "iat": .number(issued), "exp": .number(issued + 3600)])
        let signingInput = base64URL(JSONValue.object(header).encoded()) + "." + base64URL(claims.encoded())
        let key = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        let signature = try key.signature(for: Data(signingInput.utf8), padding: .insecurePKCS1v1_5)
        return signingInput + "." + base64URL(signature.rawRepresentation)
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
