/// A PROXY protocol v2 header (haproxy's spec, §2.2) telling a hosted service who is calling:
/// addresses are the loopback pair of the local hop, and TLVs carry what matters here — the
/// caller's verified identity (PP2_TYPE_AUTHORITY, 0x02), and in custom TLVs (0xE0: identity,
/// 0xE1: circuit id) for services that want them explicitly.
enum ProxyProtocolHeader {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let identityTLV: UInt8 = 0xE0
    static let circuitTLV: UInt8 = 0xE1

    static func encode(caller: String, circuitID: UInt64) -> [UInt8] {
        var tlvs: [UInt8] = []
        func tlv(_ type: UInt8, _ value: [UInt8]) {
            tlvs.append(type)
            tlvs.append(UInt8(value.count >> 8))
            tlvs.append(UInt8(value.count & 0xFF))
            tlvs.append(contentsOf: value)
        }
        let identity = Array(caller.utf8.prefix(255))
        tlv(0x02, identity)
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
}
