/// The fixed 28-byte frame header (all integers big-endian):
///
///     0  magic "PL"     2      8  bodyLength    4
///     2  version        1     12  circuitID     8
///     3  type           1     20  sequence      8
///     4  flags          2
///     6  headerLength   2
///
/// followed by `headerLength` bytes of typed headers and `bodyLength` bytes of body.
public struct FrameHeader: Equatable, Sendable {
    public static let size = 28
    public static let magic: (UInt8, UInt8) = (0x50, 0x4C)
    public static let version: UInt8 = 1

    public var type: FrameType
    public var flags: UInt16
    public var headerLength: UInt16
    public var bodyLength: UInt32
    public var circuitID: UInt64
    public var sequence: UInt64

    public init(type: FrameType, flags: UInt16 = 0, headerLength: UInt16 = 0, bodyLength: UInt32 = 0,
                circuitID: UInt64 = 0, sequence: UInt64 = 0) {
        self.type = type
        self.flags = flags
        self.headerLength = headerLength
        self.bodyLength = bodyLength
        self.circuitID = circuitID
        self.sequence = sequence
    }

    public var frameLength: Int { Self.size + Int(headerLength) + Int(bodyLength) }

    /// Writes the header into the first `size` bytes of `out`.
    public func write(to out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out[0] = Self.magic.0
        out[1] = Self.magic.1
        out[2] = Self.version
        out[3] = type.rawValue
        out.storeBytes(of: flags.bigEndian, toByteOffset: 4, as: UInt16.self)
        out.storeBytes(of: headerLength.bigEndian, toByteOffset: 6, as: UInt16.self)
        out.storeBytes(of: bodyLength.bigEndian, toByteOffset: 8, as: UInt32.self)
        out.storeBytes(of: circuitID.bigEndian, toByteOffset: 12, as: UInt64.self)
        out.storeBytes(of: sequence.bigEndian, toByteOffset: 20, as: UInt64.self)
    }
}

/// What a frame carries. Routers forward circuit frames (data, e2e handshake, close) without
/// reading their bodies; control frames are for the receiving process.
public enum FrameType: UInt8, Sendable {
    case control = 1
    case heartbeat = 2
    case heartbeatAck = 3
    case data = 4
    case e2eHandshake = 5
    case circuitClose = 6
    /// One side has no more bytes to send (a half-close); the circuit ends when both have sent it.
    /// Its sequence is the number of data frames sent before it.
    case circuitEnd = 7
    /// End-to-end acknowledgement: the sequence is the next data frame the receiver expects; the
    /// body authenticates it (routers cannot forge one).
    case ack = 8
    /// From a router to a tunneler: the circuit's path changed; resend what is unacknowledged.
    case circuitRerouted = 9

    public var belongsToCircuit: Bool {
        switch self {
        case .data, .e2eHandshake, .circuitClose, .circuitEnd, .ack, .circuitRerouted: return true
        case .control, .heartbeat, .heartbeatAck: return false
        }
    }
}
