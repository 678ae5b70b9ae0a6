/// Decodes frames from bytes. A pure function: no state, no allocation, no copy.
public enum FrameDecoder {
    public enum Result {
        /// A whole frame at the start of the input; its buffers point into the input.
        case frame(FrameView, consumed: Int)
        /// The input holds the beginning of a frame; at least this many bytes in total are needed.
        case needMore(Int)
        /// The input can never become a valid frame; the connection must be closed.
        case invalid(FrameError)
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer, maxFrame: Int = TransportLimits.defaultMaxFrame) -> Result {
        guard bytes.count >= 4 else {
            if bytes.count >= 1 && bytes[0] != FrameHeader.magic.0 { return .invalid(.badMagic) }
            if bytes.count >= 2 && bytes[1] != FrameHeader.magic.1 { return .invalid(.badMagic) }
            if bytes.count >= 3 && bytes[2] != FrameHeader.version { return .invalid(.unsupportedVersion(bytes[2])) }
            return .needMore(FrameHeader.size)
        }
        guard bytes[0] == FrameHeader.magic.0, bytes[1] == FrameHeader.magic.1 else { return .invalid(.badMagic) }
        guard bytes[2] == FrameHeader.version else { return .invalid(.unsupportedVersion(bytes[2])) }
        guard let type = FrameType(rawValue: bytes[3]) else { return .invalid(.unknownType(bytes[3])) }
        guard bytes.count >= FrameHeader.size else { return .needMore(FrameHeader.size) }

        let header = FrameHeader(
            type: type,
            flags: UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self)),
            headerLength: UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)),
            bodyLength: UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
            circuitID: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt64.self)),
            sequence: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt64.self)))
        let total = header.frameLength
        guard total <= maxFrame else { return .invalid(.oversize(length: total, limit: maxFrame)) }
        guard bytes.count >= total else { return .needMore(total) }

        let headersStart = FrameHeader.size
        let bodyStart = headersStart + Int(header.headerLength)
        let view = FrameView(
            header: header,
            raw: UnsafeRawBufferPointer(rebasing: bytes[0..<total]),
            headers: UnsafeRawBufferPointer(rebasing: bytes[headersStart..<bodyStart]),
            body: UnsafeRawBufferPointer(rebasing: bytes[bodyStart..<total]))
        return .frame(view, consumed: total)
    }
}

/// A decoded frame whose headers and body point into the decoder's input.
public struct FrameView {
    public let header: FrameHeader
    /// The whole encoded frame, for forwarding it unchanged.
    public let raw: UnsafeRawBufferPointer
    public let headers: UnsafeRawBufferPointer
    public let body: UnsafeRawBufferPointer
}

public enum FrameError: Error, Equatable, CustomStringConvertible {
    case badMagic
    case unsupportedVersion(UInt8)
    case unknownType(UInt8)
    case oversize(length: Int, limit: Int)

    public var description: String {
        switch self {
        case .badMagic: return "not a Portless frame (bad magic): is the peer speaking the Portless protocol?"
        case .unsupportedVersion(let v): return "unsupported frame version \(v) (this build speaks \(FrameHeader.version))"
        case .unknownType(let t): return "unknown frame type \(t)"
        case .oversize(let length, let limit): return "frame of \(length) bytes exceeds the limit of \(limit) bytes"
        }
    }
}
