/// PROXY protocol v2 (haproxy's spec, §2.2): how a hosting tunneler tells a local service — or
/// an in-process gateway — who is calling. Addresses are the loopback pair of the local hop;
/// the TLVs carry what matters: the caller's verified identity (PP2_TYPE_AUTHORITY 0x02, and
/// 0xE0 for services that want it explicitly) and the circuit id (0xE1).
public enum ProxyProtocol {
    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    public static let authorityTLV: UInt8 = 0x02
    public static let identityTLV: UInt8 = 0xE0
    public static let circuitTLV: UInt8 = 0xE1
    /// Longest header we accept: the fixed 16 bytes plus what a sane TLV list needs.
    public static let maxHeader = 16 + 1024

    /// What a header says about the caller.
    public struct Caller: Equatable, Sendable {
        public var identity: String?
        public var circuitID: UInt64?
    }

    public enum Parse: Equatable {
        /// A whole header of `length` bytes was read.
        case header(Caller, length: Int)
        /// The bytes do not start with a PROXY v2 header (a plain client).
        case absent
        /// The beginning of a header: more bytes are needed.
        case needMore
        case invalid(String)
    }

    public static func encode(caller: String, circuitID: UInt64) -> [UInt8] {
        var tlvs: [UInt8] = []
        func tlv(_ type: UInt8, _ value: [UInt8]) {
            tlvs.append(type)
            tlvs.append(UInt8(value.count >> 8))
            tlvs.append(UInt8(value.count & 0xFF))
            tlvs.append(contentsOf: value)
        }
        let identity = Array(caller.utf8.prefix(255))
        tlv(authorityTLV, identity)
        tlv(identityTLV, identity)
        tlv(circuitTLV, Array(String(circuitID).utf8))
        // TCP over IPv4: 127.0.0.1:0 → 127.0.0.1:0 (the real endpoints are the overlay's).
        let addresses: [UInt8] = [127, 0, 0, 1, 127, 0, 0, 1, 0, 0, 0, 0]
        let length = addresses.count + tlvs.count
        var header = signature
        header.append(0x21)  // version 2, command PROXY
        header.append(0x11)  // AF_INET, STREAM
        header.append(UInt8(length >> 8))
        header.append(UInt8(length & 0xFF))
        header.append(contentsOf: addresses)
        header.append(contentsOf: tlvs)
        return header
    }

    /// Parses a header at the start of `bytes`. A pure function over bytes.
    public static func parse<Bytes: Collection>(_ bytes: Bytes) -> Parse where Bytes.Element == UInt8 {
        let prefix = Array(bytes.prefix(maxHeader))
        for (index, byte) in signature.enumerated() where index < prefix.count && prefix[index] != byte { return .absent }
        guard prefix.count >= 16 else { return .needMore }
        guard prefix[12] >> 4 == 2 else { return .invalid("PROXY protocol version \(prefix[12] >> 4), expected 2") }
        let length = Int(prefix[14]) << 8 | Int(prefix[15])
        guard 16 + length <= maxHeader else { return .invalid("PROXY header of \(16 + length) bytes is too long") }
        guard prefix.count >= 16 + length else { return .needMore }
        let addressLength: Int
        switch prefix[13] >> 4 {
        case 0: addressLength = 0
        case 1: addressLength = 12
        case 2: addressLength = 36
        case 3: addressLength = 216
        default: return .invalid("unknown PROXY address family")
        }
        guard addressLength <= length else { return .invalid("PROXY header shorter than its addresses") }
        var caller = Caller()
        var index = 16 + addressLength
        let end = 16 + length
        while index < end {
            guard index + 3 <= end else { return .invalid("truncated PROXY TLV") }
            let type = prefix[index]
            let valueLength = Int(prefix[index + 1]) << 8 | Int(prefix[index + 2])
            guard index + 3 + valueLength <= end else { return .invalid("PROXY TLV overruns the header") }
            let value = prefix[(index + 3)..<(index + 3 + valueLength)]
            switch type {
            case identityTLV: caller.identity = String(decoding: value, as: UTF8.self)
            case authorityTLV where caller.identity == nil: caller.identity = String(decoding: value, as: UTF8.self)
            case circuitTLV: caller.circuitID = UInt64(String(decoding: value, as: UTF8.self))
            default: break
            }
            index += 3 + valueLength
        }
        return .header(caller, length: end)
    }
}
