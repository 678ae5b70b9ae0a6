import Foundation

/// Server-Sent Events (the WHATWG format) decoded incrementally: feed bytes as they arrive,
/// get each complete event's data. Only `data:` lines matter to MCP; `event:`, `id:` and
/// comments are skipped.
public struct SSEDecoder {
    public init() {}
    public static let maxEventBytes = 16 << 20
    private var buffer: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false

    enum DecodeError: Error { case eventTooLarge }

    public mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [Data] {
        buffer.append(contentsOf: bytes)
        var events: [Data] = []
        var start = 0
        var index = 0
        while index < buffer.count {
            let byte = buffer[index]
            guard byte == 0x0A || byte == 0x0D else { index += 1; continue }
            let line = buffer[start..<index]
            index += 1
            if byte == 0x0D, index < buffer.count, buffer[index] == 0x0A { index += 1 }
            else if byte == 0x0D, index == buffer.count { index -= 1; break }
            start = index
            if line.isEmpty {
                if hasData { events.append(Data(data)) }
                data.removeAll(keepingCapacity: true)
                hasData = false
            } else if line.starts(with: Array("data".utf8)) {
                var value = line.dropFirst(4)
                if value.first == UInt8(ascii: ":") { value = value.dropFirst() } else if !value.isEmpty { continue }
                if value.first == 0x20 { value = value.dropFirst() }
                if hasData { data.append(0x0A) }
                data.append(contentsOf: value)
                hasData = true
            }
        }
        buffer.removeFirst(start)
        if buffer.count + data.count > Self.maxEventBytes { throw DecodeError.eventTooLarge }
        return events
    }
}
