import COpenSSL

/// One AES-256-GCM key for one direction — sealing or opening — through OpenSSL's EVP, so that
/// AES-NI does the work with no allocation per message and in place when asked (`input` and
/// `output` may be the same memory). Nonces are 4 bytes of salt and a 64-bit counter, both
/// big-endian; the owner never uses a counter twice under one key.
public final class AESGCMKey {
    public static let keySize = 32
    public static let tagSize = 16
    private let context: OpaquePointer
    private let sealing: Bool

    public init(_ key: [UInt8], sealing: Bool) throws {
        let context = key.withUnsafeBufferPointer { key -> OpaquePointer? in
            guard key.count == Self.keySize, let base = key.baseAddress else { return nil }
            return portless_gcm_new(base, sealing ? 1 : 0)
        }
        guard let context else { throw AESGCMError.unusableKey }
        self.context = context
        self.sealing = sealing
    }

    public convenience init(_ key: UnsafeRawBufferPointer, sealing: Bool) throws {
        try self.init(Array(key), sealing: sealing)
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Encrypts `input` into `output` (same length) and writes the 16-byte tag into `tag`.
    public func seal(salt: UInt32, counter: UInt64, aad: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                     input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawBufferPointer) -> Bool {
        guard sealing, output.count >= input.count, tag.count >= Self.tagSize, input.count <= Int(Int32.max) else { return false }
        return withNonce(salt, counter) { nonce in
            portless_gcm_seal(context, nonce, bytes(aad), Int32(aad.count), bytes(input), mutableBytes(output),
                              Int32(input.count), mutableBytes(tag)) == 1
        }
    }

    /// Decrypts `input` into `output` if `tag` authenticates it (and `aad`); false otherwise, and
    /// then `output` holds nothing the caller may use.
    public func open(salt: UInt32, counter: UInt64, aad: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                     input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer, tag: UnsafeRawBufferPointer) -> Bool {
        guard !sealing, output.count >= input.count, tag.count == Self.tagSize, input.count <= Int(Int32.max) else { return false }
        return withNonce(salt, counter) { nonce in
            portless_gcm_open(context, nonce, bytes(aad), Int32(aad.count), bytes(input), mutableBytes(output),
                              Int32(input.count), bytes(tag)) == 1
        }
    }

    private func withNonce<T>(_ salt: UInt32, _ counter: UInt64, _ body: (UnsafePointer<UInt8>) -> T) -> T {
        var nonce = (salt.bigEndian, UInt32(truncatingIfNeeded: counter >> 32).bigEndian, UInt32(truncatingIfNeeded: counter).bigEndian)
        return withUnsafeBytes(of: &nonce) { body($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }  // safe: a 12-byte tuple on the stack
    }

    private func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }

    private func mutableBytes(_ buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutablePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }
}

public enum AESGCMError: Error, CustomStringConvertible {
    case unusableKey

    public var description: String { "AES-256-GCM key could not be set up (OpenSSL refused it)" }
}
