import Crypto
import SwiftASN1
import Foundation
import X509

/// SHA-256 fingerprints in hex: of a certificate (over its DER encoding, whatever its PEM
/// wrapping), and of the session key. Tokens and credentials carry them so that what arrives
/// over the network is checked against something the holder already trusts.
public enum Fingerprint {
    public static func sha256(_ data: Data) -> String {
        Hex.encode(SHA256.hash(data: data))
    }

    public static func certificate(_ certificate: Certificate) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return sha256(Data(serializer.serializedBytes))
    }

    public static func certificate(pem: String) throws -> String {
        try certificate(Certificate(pemEncoded: pem))
    }
}
