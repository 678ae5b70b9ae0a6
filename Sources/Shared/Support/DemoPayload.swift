/// The deterministic bytes the demo service serves at `/bytes?n=N`, so a receiver can check a
/// transfer end to end by regenerating them.
public enum DemoPayload {
    public static let blockSize = 64 * 1024

    /// One 64 KiB block; the payload is this block repeated, cut to length.
    public static let block: [UInt8] = {
        var state: UInt32 = 0x9E37_79B9
        return (0..<blockSize).map { _ in
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            return UInt8(truncatingIfNeeded: state)
        }
    }()
}
