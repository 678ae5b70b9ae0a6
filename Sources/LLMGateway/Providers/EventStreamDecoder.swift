import Foundation

/// AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock's
/// ConverseStream sends it: prelude (total length, headers length, CRC32), headers, payload,
/// message CRC32. Feed bytes as they arrive; get whole messages.
struct EventStreamDecoder {
    struct Message: Equatable {
        var headers: [String: String]
        var payload: Data
    }

    enum DecodeError: Error, Equatable { case badLength(Int), preludeCRC, messageCRC, badHeader }

    static let maxMessage = 16 << 20
    private var buffer = Data()

    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) throws -> [Message] where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        var messages: [Message] = []
        while buffer.count >= 12 {
            let bytes = [UInt8](buffer.prefix(12))
            let total = Int(Self.uint32(bytes, 0)), headersLength = Int(Self.uint32(bytes, 4))
            guard total >= 16 + headersLength, total <= Self.maxMessage else { throw DecodeError.badLength(total) }
            guard Self.crc32(bytes[0..<8]) == Self.uint32(bytes, 8) else { throw DecodeError.preludeCRC }
            guard buffer.count >= total else { break }
            let message = [UInt8](buffer.prefix(total))
            buffer.removeFirst(total)
            guard Self.crc32(message[0..<(total - 4)]) == Self.uint32(message, total - 4) else { throw DecodeError.messageCRC }
            let headers = try Self.headers(Array(message[12..<(12 + headersLength)]))
            messages.append(Message(headers: headers, payload: Data(message[(12 + headersLength)..<(total - 4)])))
        }
        return messages
    }

    private static func headers(_ bytes: [UInt8]) throws -> [String: String] {
        var headers: [String: String] = [:]
        var index = 0
        while index < bytes.count {
            let nameLength = Int(bytes[index]); index += 1
            guard index + nameLength + 1 <= bytes.count else { throw DecodeError.badHeader }
            let name = String(decoding: bytes[index..<(index + nameLength)], as: UTF8.self); index += nameLength
            let type = bytes[index]; index += 1
            switch type {
            case 0, 1: headers[name] = type == 0 ? "true" : "false"
            case 2: index += 1
            case 3: index += 2
            case 4: index += 4
            case 5, 8: index += 8
            case 6, 7:
                guard index + 2 <= bytes.count else { throw DecodeError.badHeader }
                let length = Int(bytes[index]) << 8 | Int(bytes[index + 1]); index += 2
                guard index + length <= bytes.count else { throw DecodeError.badHeader }
                if type == 7 { headers[name] = String(decoding: bytes[index..<(index + length)], as: UTF8.self) }
                index += length
            case 9: index += 16
            default: throw DecodeError.badHeader
            }
        }
        return headers
    }

    static func uint32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    private static let table: [UInt32] = (0..<256).map { value in
        var crc = UInt32(value)
        for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        return crc
    }

    static func crc32<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// One encoded message with string headers (for tests and fakes written in Swift).
    static func encode(headers: [(String, String)], payload: Data) -> Data {
        var headerBytes: [UInt8] = []
        for (name, value) in headers {
            headerBytes.append(UInt8(name.utf8.count)); headerBytes += Array(name.utf8)
            headerBytes.append(7); headerBytes += [UInt8(value.utf8.count >> 8), UInt8(value.utf8.count & 0xFF)]; headerBytes += Array(value.utf8)
        }
        let total = 12 + headerBytes.count + payload.count + 4
        func be(_ value: UInt32) -> [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
        var message = be(UInt32(total)) + be(UInt32(headerBytes.count))
        message += be(crc32(message))
        message += headerBytes + Array(payload)
        message += be(crc32(message))
        return Data(message)
    }
}
