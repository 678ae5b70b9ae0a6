import _CryptoExtras
import Foundation

/// A throwaway RSA key for signing tests.
enum _RSAKeyFixture {
    static func pem() throws -> String { try _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation }
}
