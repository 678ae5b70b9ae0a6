import Crypto

/// How frames travel on a link or an edge connection once TLS 1.3 has authenticated both ends.
///
/// TLS does the handshake only: mutual certificates under the network CA, and keys exported from
/// the session (RFC 8446 §7.5, label `EXPORTER-portless-link-v1`), one AES-256-GCM key and
/// 4-byte salt per direction. Then each frame is one record:
///
///     0  sealedLength  u32     } authenticated (the AEAD's associated data)
///     4  openLength    u32     }
///     8  tag           16 bytes
///    24  sealed        the frame's first sealedLength bytes, encrypted and authenticated
///        open          the rest of the frame, as it is
///
/// The nonce is the salt and the record's number in its direction: a record cannot be dropped,
/// replayed, reordered or injected without the next one failing. Only a data frame has an open
/// part: its body is already sealed end to end (`CircuitCipher`: the circuit's tag first, then
/// its ciphertext), so the hop seals the frame header and that end-to-end tag — which commits to
/// the ciphertext — and passes the ciphertext as it is. Every other frame (control messages,
/// handshakes, acks, heartbeats) is sealed whole. What this gives up against sealing every byte
/// at every hop: an observer of a link sees ciphertext a router would see anyway, and a byte it
/// flips there fails the circuit's end-to-end check rather than the link's.
///
/// Keys are replaced (HKDF from the previous one) every `rekeyRecords` records or `rekeyBytes`
/// sealed bytes, far inside AES-GCM's usage limits; both ends count the same records.
struct LinkRecordCipher {
    static let prefixSize = 8
    static let overhead = prefixSize + AESGCMKey.tagSize
    static let exporterLabel = "EXPORTER-portless-link-v1"
    static let rekeyRecords: UInt64 = 1 << 24
    static let rekeyBytes: UInt64 = 1 << 34

    private var key: AESGCMKey
    private var keyBytes: [UInt8]
    private var salt: UInt32
    private let sealing: Bool
    private(set) var counter: UInt64 = 0
    private var recordsUnderKey: UInt64 = 0
    private var bytesUnderKey: UInt64 = 0
    private let rekeyRecords: UInt64
    private let rekeyBytes: UInt64

    init(material: ArraySlice<UInt8>, sealing: Bool, rekeyRecords: UInt64 = Self.rekeyRecords, rekeyBytes: UInt64 = Self.rekeyBytes) throws {
        keyBytes = Array(material.prefix(AESGCMKey.keySize))
        salt = material.dropFirst(AESGCMKey.keySize).prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
        key = try AESGCMKey(keyBytes, sealing: sealing)
        self.sealing = sealing
        self.rekeyRecords = rekeyRecords
        self.rekeyBytes = rekeyBytes
    }

    /// The two directions' ciphers of one connection, from its TLS session.
    static func pair(exportedFrom tls: TLSEngine, isServer: Bool) throws -> (send: LinkRecordCipher, receive: LinkRecordCipher) {
        let half = AESGCMKey.keySize + 4
        let material = try tls.exportKeyingMaterial(label: exporterLabel, count: 2 * half)
        let clientToServer = material[0..<half], serverToClient = material[half..<2 * half]
        return (try LinkRecordCipher(material: isServer ? serverToClient : clientToServer, sealing: true),
                try LinkRecordCipher(material: isServer ? clientToServer : serverToClient, sealing: false))
    }

    /// How much of a frame a record seals: a data frame's header, typed headers and end-to-end
    /// tag; all of any other frame.
    static func sealedLength(of header: FrameHeader) -> Int {
        if header.type == .data && header.bodyLength >= UInt32(AESGCMKey.tagSize) {
            return FrameHeader.size + Int(header.headerLength) + AESGCMKey.tagSize
        }
        return header.frameLength
    }

    /// The lengths a record's prefix announces (unauthenticated until the record is opened).
    static func lengths(of prefix: UnsafeRawBufferPointer) -> (sealed: Int, open: Int) {
        (Int(UInt32(bigEndian: prefix.loadUnaligned(fromByteOffset: 0, as: UInt32.self))),
         Int(UInt32(bigEndian: prefix.loadUnaligned(fromByteOffset: 4, as: UInt32.self))))
    }

    /// Seals a record in place: `record` is `overhead` bytes of room, then the sealed part (plain
    /// on entry); the open part follows elsewhere and is only counted.
    mutating func seal(_ record: UnsafeMutableRawBufferPointer, openLength: Int) -> Bool {
        let sealedLength = record.count - Self.overhead
        record.storeBytes(of: UInt32(sealedLength).bigEndian, toByteOffset: 0, as: UInt32.self)
        record.storeBytes(of: UInt32(openLength).bigEndian, toByteOffset: 4, as: UInt32.self)
        let sealed = UnsafeMutableRawBufferPointer(rebasing: record[Self.overhead...])
        let ok = key.seal(salt: salt, counter: counter, aad: UnsafeRawBufferPointer(rebasing: record[0..<Self.prefixSize]),
                          input: UnsafeRawBufferPointer(sealed), output: sealed,
                          tag: UnsafeMutableRawBufferPointer(rebasing: record[Self.prefixSize..<Self.overhead]))
        return ok && advance(sealedLength)
    }

    /// Opens a whole record in place (prefix, tag, sealed and open parts); false if it was not
    /// sealed by the peer as the next record of this direction.
    mutating func open(_ record: UnsafeMutableRawBufferPointer) -> Bool {
        guard record.count >= Self.overhead else { return false }
        let (sealedLength, _) = Self.lengths(of: UnsafeRawBufferPointer(record))
        guard Self.overhead + sealedLength <= record.count else { return false }
        let sealed = UnsafeMutableRawBufferPointer(rebasing: record[Self.overhead..<Self.overhead + sealedLength])
        let ok = key.open(salt: salt, counter: counter, aad: UnsafeRawBufferPointer(rebasing: record[0..<Self.prefixSize]),
                          input: UnsafeRawBufferPointer(sealed), output: sealed,
                          tag: UnsafeRawBufferPointer(rebasing: record[Self.prefixSize..<Self.overhead]))
        return ok && advance(sealedLength)
    }

    private mutating func advance(_ sealedLength: Int) -> Bool {
        counter += 1
        recordsUnderKey += 1
        bytesUnderKey += UInt64(sealedLength)
        guard recordsUnderKey >= rekeyRecords || bytesUnderKey >= rekeyBytes else { return true }
        let next = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: keyBytes), info: Array("portless link rekey".utf8),
                                          outputByteCount: AESGCMKey.keySize + 4)
        let material = next.withUnsafeBytes { Array($0) }
        guard let replacement = try? AESGCMKey(Array(material.prefix(AESGCMKey.keySize)), sealing: sealing) else { return false }
        key = replacement
        keyBytes = Array(material.prefix(AESGCMKey.keySize))
        salt = material.suffix(4).reduce(0) { $0 << 8 | UInt32($1) }
        recordsUnderKey = 0
        bytesUnderKey = 0
        return true
    }
}

public enum LinkRecordError: Error, CustomStringConvertible {
    case forged
    case malformed(String)
    case refusedByPeer(String)

    public var description: String {
        switch self {
        case .forged: return "a link record failed authentication (altered, replayed or injected on the wire): connection closed"
        case .malformed(let why): return "malformed link record: \(why)"
        case .refusedByPeer(let why): return "the peer refused the TLS handshake: \(why)"
        }
    }
}
