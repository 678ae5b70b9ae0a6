import Foundation

/// The messages of one dial (tunneler → router → controller and back, router → hosting
/// tunneler), written and read without `Codable`: through `JSONEncoder`/`JSONDecoder` each cost
/// tens of thousands of instructions, and a dial passes five of them through four processes.
///
/// The bytes are what the synthesized `Codable` of `ControlEnvelope` reads (an enum case as
/// `{"case":{labels…}}`, a nil optional left out), so a peer that decodes them with
/// `JSONDecoder` reads the same message (checked by `DialPathMessagesTests`). A body this reader
/// does not recognise, or that does not hold what its case needs, is left to `JSONDecoder`, which
/// either reads it or says precisely what is wrong with it.
public enum DialPathMessages {
    /// The envelope's bytes when its message is one of the dial path's; nil for any other.
    public static func encode(_ envelope: ControlEnvelope) -> [UInt8]? {
        var out = Writer()
        switch envelope.message {
        case .dial(let session):
            out.begin(envelope, "dial")
            out.string("session", session)
        case .dialed(let circuitID, let hostIdentity, let grant):
            out.begin(envelope, "dialed")
            out.unsigned("circuitID", circuitID)
            out.string("hostIdentity", hostIdentity)
            out.string("grant", grant)
        case .createCircuit(let sessionID, let service, let dialer):
            out.begin(envelope, "createCircuit")
            out.string("sessionID", sessionID)
            out.string("service", service)
            out.string("dialer", dialer)
        case .circuitRoute(let circuitID, let terminatorID, let hostIdentity, let nextHop, let grant):
            out.begin(envelope, "circuitRoute")
            out.unsigned("circuitID", circuitID)
            out.string("terminatorID", terminatorID)
            out.string("hostIdentity", hostIdentity)
            if let nextHop { out.string("nextHop", nextHop) }
            out.string("grant", grant)
        case .incomingCircuit(let circuitID, let service, let caller, let terminatorID, let grant):
            out.begin(envelope, "incomingCircuit")
            out.unsigned("circuitID", circuitID)
            out.string("service", service)
            out.string("caller", caller)
            out.string("terminatorID", terminatorID)
            out.string("grant", grant)
        case .circuitClosed(let circuitID, let reason):
            out.begin(envelope, "circuitClosed")
            out.unsigned("circuitID", circuitID)
            out.string("reason", reason)
        case .failure(let message):
            out.begin(envelope, "failure")
            out.string("message", message)
        default:
            return nil
        }
        out.end()
        return out.bytes
    }

    /// The envelope in `body` when it carries one of the dial path's messages, whole; nil for
    /// anything else.
    public static func decode(_ body: UnsafeRawBufferPointer) -> ControlEnvelope? {
        // Every other message goes to `JSONDecoder` unparsed: only these cases start this way.
        guard let name = caseName(in: body), names.contains(name) else { return nil }
        guard case .object(let top)? = try? JSONParser.parse(body),
              let id = top["id"]?.uint32, let replyTo = top["replyTo"]?.uint32,
              case .object(let message)? = top["message"], message.count == 1,
              let (key, value) = message.first, case .object(let fields) = value else { return nil }
        let field = Fields(fields)
        let decoded: ControlMessage?
        switch key {
        case "dial":
            decoded = field.string("session").map { .dial(session: $0) }
        case "dialed":
            guard let circuit = field.unsigned("circuitID"), let host = field.string("hostIdentity"), let grant = field.string("grant") else { return nil }
            decoded = .dialed(circuitID: circuit, hostIdentity: host, grant: grant)
        case "createCircuit":
            guard let session = field.string("sessionID"), let service = field.string("service"), let dialer = field.string("dialer") else { return nil }
            decoded = .createCircuit(sessionID: session, service: service, dialer: dialer)
        case "circuitRoute":
            guard let circuit = field.unsigned("circuitID"), let terminator = field.string("terminatorID"),
                  let host = field.string("hostIdentity"), let nextHop = field.optionalString("nextHop"), let grant = field.string("grant") else { return nil }
            decoded = .circuitRoute(circuitID: circuit, terminatorID: terminator, hostIdentity: host, nextHop: nextHop, grant: grant)
        case "incomingCircuit":
            guard let circuit = field.unsigned("circuitID"), let service = field.string("service"), let caller = field.string("caller"),
                  let terminator = field.string("terminatorID"), let grant = field.string("grant") else { return nil }
            decoded = .incomingCircuit(circuitID: circuit, service: service, caller: caller, terminatorID: terminator, grant: grant)
        case "circuitClosed":
            guard let circuit = field.unsigned("circuitID"), let reason = field.string("reason") else { return nil }
            decoded = .circuitClosed(circuitID: circuit, reason: reason)
        case "failure":
            decoded = field.string("message").map { .failure(message: $0) }
        default:
            decoded = nil
        }
        return decoded.map { ControlEnvelope(id: id, replyTo: replyTo, message: $0) }
    }

    private static let names: Set<String> = ["dial", "dialed", "createCircuit", "circuitRoute", "incomingCircuit", "circuitClosed", "failure"]
    private static let messagePrefix = Array(#""message":{""#.utf8)

    /// The case name that follows `"message":{"` in the layout `encode` writes; nil when the
    /// body is laid out otherwise.
    private static func caseName(in body: UnsafeRawBufferPointer) -> String? {
        guard body.count > messagePrefix.count, let start = firstIndex(of: messagePrefix, in: body) else { return nil }
        let nameStart = start + messagePrefix.count
        var end = nameStart
        while end < body.count, end - nameStart < 32, body[end] != UInt8(ascii: "\"") { end += 1 }
        guard end < body.count, body[end] == UInt8(ascii: "\"") else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: body[nameStart..<end]), as: UTF8.self)
    }

    private static func firstIndex(of needle: [UInt8], in body: UnsafeRawBufferPointer) -> Int? {
        // The envelope's own fields come first and are short: look only near the start.
        let limit = min(body.count - needle.count, 64)
        guard limit >= 0 else { return nil }
        for start in 0...limit where body[start] == needle[0] {
            if needle.indices.allSatisfy({ body[start + $0] == needle[$0] }) { return start }
        }
        return nil
    }

    private struct Fields {
        let values: [String: JSONValue]
        init(_ values: [String: JSONValue]) { self.values = values }

        func string(_ key: String) -> String? { values[key]?.stringValue }
        func unsigned(_ key: String) -> UInt64? {
            if case .number(let number)? = values[key] { return number.uint64Value }
            return nil
        }
        /// `.some(nil)` when absent or null (as `decodeIfPresent` reads it); nil when of another type.
        func optionalString(_ key: String) -> String?? {
            switch values[key] {
            case nil, .null?: return .some(nil)
            case .string(let value)?: return .some(value)
            default: return nil
            }
        }
    }

    private struct Writer {
        var bytes: [UInt8] = []
        private var first = true

        init() { bytes.reserveCapacity(512) }

        mutating func begin(_ envelope: ControlEnvelope, _ name: StaticString) {
            bytes.append(contentsOf: #"{"id":"#.utf8)
            bytes.append(contentsOf: String(envelope.id).utf8)
            bytes.append(contentsOf: #","replyTo":"#.utf8)
            bytes.append(contentsOf: String(envelope.replyTo).utf8)
            bytes.append(contentsOf: #","message":{""#.utf8)
            name.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: #"":{"#.utf8)
        }

        mutating func end() { bytes.append(contentsOf: "}}}".utf8) }

        mutating func string(_ key: StaticString, _ value: String) {
            self.key(key)
            JSONValue.write(string: value, to: &bytes)
        }

        mutating func unsigned(_ key: StaticString, _ value: UInt64) {
            self.key(key)
            bytes.append(contentsOf: String(value).utf8)
        }

        private mutating func key(_ key: StaticString) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            bytes.append(UInt8(ascii: "\""))
            key.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: "\":".utf8)
        }
    }
}

private extension JSONValue {
    var uint32: UInt32? {
        if case .number(let number) = self, let value = number.uint64Value, value <= UInt64(UInt32.max) { return UInt32(value) }
        return nil
    }
}
