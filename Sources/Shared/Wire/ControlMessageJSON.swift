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

    /// Usage records as the control channel's decoder reads them (`LLMUsageRecord`'s synthesized
    /// `Codable`, dates as `JSONDecoder`'s default: seconds since 2001). Written by hand: through
    /// `JSONEncoder` a record cost ~40,000 instructions, and every model call makes one.
    public static func encode(_ records: [LLMUsageRecord]) throws -> Data {
        var out = BatchWriter(capacity: records.count * 200)
        try out.array(records) { out, record in
            try out.number("at", record.at.timeIntervalSinceReferenceDate)
            out.string("identity", record.identity)
            if let user = record.user { out.string("user", user) }
            if let project = record.project { out.string("project", project) }
            out.string("model", record.model)
            out.string("provider", record.provider)
            out.integer("inputTokens", record.inputTokens)
            out.integer("outputTokens", record.outputTokens)
            try out.number("costUSD", record.costUSD)
            if let tokens = record.cachedInputTokens { out.integer("cachedInputTokens", tokens) }
            if let tokens = record.cacheWriteTokens { out.integer("cacheWriteTokens", tokens) }
            if let tokens = record.reasoningTokens { out.integer("reasoningTokens", tokens) }
            if let estimated = record.estimated { out.bool("estimated", estimated) }
            if let unpriced = record.unpriced { out.bool("unpriced", unpriced) }
        }
        return Data(out.bytes)
    }

    /// Audit events as the control channel's decoder reads them (`GatewayAuditEvent`'s synthesized `Codable`).
    public static func encode(_ events: [GatewayAuditEvent]) throws -> Data {
        var out = BatchWriter(capacity: events.reduce(0) { $0 + $1.detail.utf8.count + 80 })
        out.array(events) { out, event in
            out.string("type", event.type)
            if let identity = event.identity { out.string("identity", identity) }
            if let user = event.user { out.string("user", user) }
            if let circuit = event.circuit { out.unsigned("circuit", circuit) }
            out.string("detail", event.detail)
        }
        return Data(out.bytes)
    }

    /// The commonest control message, `ok` in reply to request `replyTo`, in one fixed spelling
    /// (`JSONEncoder` orders the keys as it likes); `okReply(in:)` recognises exactly these bytes,
    /// so both ends skip `Codable` for it (every report a gateway sends is answered with one).
    /// Any other spelling still decodes as usual.
    static func okReply(to replyTo: UInt32) -> [UInt8] {
        Array(#"{"id":0,"replyTo":\#(replyTo),"message":{"ok":{}}}"#.utf8)
    }

    /// The request an `ok` reply answers, when `body` is exactly `okReply(to:)`; nil for
    /// anything else (which is then decoded as usual).
    static func okReply(in body: UnsafeRawBufferPointer) -> UInt32? {
        let prefix = #"{"id":0,"replyTo":"#.utf8, suffix = #","message":{"ok":{}}}"#.utf8
        guard body.count > prefix.count + suffix.count, body.count <= prefix.count + suffix.count + 10,
              body.starts(with: prefix), body.reversed().starts(with: suffix.reversed()) else { return nil }
        let digits = body[prefix.count..<(body.count - suffix.count)]
        guard digits.first != UInt8(ascii: "0") else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(digit - UInt8(ascii: "0"))
        }
        return value <= UInt64(UInt32.max) ? UInt32(value) : nil
    }

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

/// An array of flat JSON objects, member by member.
private struct BatchWriter {
    var bytes: [UInt8] = []
    private var firstMember = true

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func array<Element>(_ elements: [Element], _ members: (inout BatchWriter, Element) throws -> Void) rethrows {
        bytes.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(UInt8(ascii: "{"))
            firstMember = true
            try members(&self, element)
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func string(_ key: StaticString, _ value: String) {
        self.key(key)
        JSONValue.write(string: value, to: &bytes)
    }

    mutating func integer(_ key: StaticString, _ value: Int) {
        self.key(key)
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func unsigned(_ key: StaticString, _ value: UInt64) {
        self.key(key)
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func bool(_ key: StaticString, _ value: Bool) {
        self.key(key)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// A finite number in its shortest form that reads back as the same `Double`; JSON has no
    /// infinity or NaN, so those are refused as `JSONEncoder` refuses them.
    mutating func number(_ key: StaticString, _ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "'\(key)' is \(value): JSON has no such number"))
        }
        self.key(key)
        if value == value.rounded(), abs(value) < 1e15 {
            bytes.append(contentsOf: String(Int64(value)).utf8)
        } else {
            bytes.append(contentsOf: value.description.utf8)
        }
    }

    private mutating func key(_ key: StaticString) {
        if !firstMember { bytes.append(UInt8(ascii: ",")) }
        firstMember = false
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: "\":".utf8)
    }
}
