/// Every limit of the transport and the overlay, in one place. Each bounds what a peer — even an
/// enrolled, hostile one — can make this process hold or wait for.
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
    /// What a connection may have queued for a peer that does not read, at most: past it the
    /// connection is closed (the peer is not keeping up with what it asked for).
    public static let maxQueuedBytes = 64 * 1024 * 1024
    /// Heartbeat period, and how many silent periods end a connection.
    public static let heartbeatIntervalMs: UInt64 = 5_000
    public static let heartbeatMissesAllowed = 3
    /// A heartbeat carries an 8-byte timestamp; a larger one is not echoed.
    public static let heartbeatBody = 8
    /// TLS handshakes that have not finished by then are abandoned.
    public static let handshakeTimeoutMs: UInt64 = 10_000
    /// Buffers a connection holds before its peer is authenticated (a handshake's flights fit).
    public static let preAuthenticationBuffer = 32 * 1024
    /// An end-to-end handshake that has not completed by then ends the circuit, and the private
    /// service's connection with it.
    public static let e2eHandshakeTimeoutMs: UInt64 = 10_000
    /// A circuit's window, per direction: bytes its sender may have sent beyond what the receiving
    /// application has taken. It bounds what the circuit holds anywhere — in the sender's
    /// retransmit ring, in each router's queue for it, in the receiver's local socket queue.
    public static let circuitWindow = 4 * 1024 * 1024
    /// What one circuit may have queued at one router: its window and two frames (a resend in
    /// flight). A circuit past it is closed: its sender ignored the window.
    public static let circuitQueuePerHop = circuitWindow + 2 * defaultMaxFrame
}
