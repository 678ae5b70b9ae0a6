/// Encodes frames into a caller-owned, reusable buffer.
public enum FrameEncoder {
    /// Writes header, typed headers and body into `out` (which must be large enough) and returns
    /// the number of bytes written.
    @discardableResult
    public static func encode(type: FrameType, circuitID: UInt64 = 0, sequence: UInt64 = 0, flags: UInt16 = 0,
                              headers: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                              body: UnsafeRawBufferPointer,
                              into out: UnsafeMutableRawBufferPointer) -> Int {
        let header = FrameHeader(type: type, flags: flags, headerLength: UInt16(headers.count),
                                 bodyLength: UInt32(body.count), circuitID: circuitID, sequence: sequence)
        header.write(to: out)
        var offset = FrameHeader.size
        if headers.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: out[offset..<offset + headers.count]).copyMemory(from: headers)
            offset += headers.count
        }
        if body.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: out[offset..<offset + body.count]).copyMemory(from: body)
            offset += body.count
        }
        return offset
    }

    /// Convenience for tests and control paths: an owned byte array.
    public static func encode(type: FrameType, circuitID: UInt64 = 0, sequence: UInt64 = 0, flags: UInt16 = 0,
                              headers: [UInt8] = [], body: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: FrameHeader.size + headers.count + body.count)
        out.withUnsafeMutableBytes { o in
            headers.withUnsafeBytes { h in
                body.withUnsafeBytes { b in
                    _ = encode(type: type, circuitID: circuitID, sequence: sequence, flags: flags, headers: h, body: b, into: o)
                }
            }
        }
        return out
    }
}
