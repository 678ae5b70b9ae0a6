/// Every limit of the transport, in one place.
public enum TransportLimits {
    /// Largest frame (header + typed headers + body) a peer may send us.
    public static let defaultMaxFrame = 256 * 1024
    /// Application bytes carried per data frame.
    public static let dataChunk = 64 * 1024
    /// Bytes requested from the kernel per read.
    public static let readChunk = 256 * 1024
    /// A connection whose queued writes exceed this makes its sources stop reading.
    public static let writeHighWaterMark = 1024 * 1024
    /// Sources resume once the queue drains to this.
    public static let writeLowWaterMark = 256 * 1024
    /// Heartbeat period, and how many silent periods end a connection.
    public static let heartbeatIntervalMs: UInt64 = 5_000
    public static let heartbeatMissesAllowed = 3
    /// TLS handshakes that have not finished by then are abandoned.
    public static let handshakeTimeoutMs: UInt64 = 10_000
}
