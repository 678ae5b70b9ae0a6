import Foundation

/// Control messages written as JSON piece by piece, so that the bulky part (a batch of usage
/// records or audit events) can be encoded away from the event loop that sends it. The pieces
/// are exactly what `JSONEncoder` writes for `ControlEnvelope` and the synthesized `Codable` of
/// `ControlMessage` (checked by `ControlMessageJSONTests`), so the receiver decodes them as usual.
public enum ControlMessageJSON {
    /// `ControlMessage.auditEvents(apiSession:service:events:)` with `events` encoded beforehand (`encode`).
    public static func auditEvents(apiSession: String, service: String, events: Data) -> Data {
        batch("auditEvents", apiSession: apiSession, service: service, field: "events", encoded: events)
    }

    /// `ControlMessage.llmUsage(apiSession:service:records:)` with `records` encoded beforehand (`encode`).
    public static func llmUsage(apiSession: String, service: String, records: Data) -> Data {
        batch("llmUsage", apiSession: apiSession, service: service, field: "records", encoded: records)
    }

    /// A batch as the control channel's encoder would write it.
    public static func encode<T: Encodable>(_ batch: T) throws -> Data { try JSONEncoder().encode(batch) }

    static func envelope(id: UInt32, message: Data) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(message.count + 48)
        out.append(contentsOf: #"{"id":\#(id),"replyTo":0,"message":"#.utf8)
        out.append(contentsOf: message)
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static func batch(_ name: String, apiSession: String, service: String, field: String, encoded: Data) -> Data {
        var out = [UInt8]()
        out.reserveCapacity(encoded.count + apiSession.utf8.count + service.utf8.count + 64)
        out.append(contentsOf: #"{"\#(name)":{"apiSession":"#.utf8)
        JSONValue.write(string: apiSession, to: &out)
        out.append(contentsOf: #","service":"#.utf8)
        JSONValue.write(string: service, to: &out)
        out.append(contentsOf: #","\#(field)":"#.utf8)
        out.append(contentsOf: encoded)
        out.append(contentsOf: "}}".utf8)
        return Data(out)
    }
}
