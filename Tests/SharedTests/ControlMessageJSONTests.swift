import Foundation
@testable import Shared
import XCTest

/// Batches are encoded off the event loop and spliced into the envelope: the receiver must
/// decode exactly what `JSONEncoder` would have sent for the whole message.
final class ControlMessageJSONTests: XCTestCase {
    private let session = "api \"session\" \\ token"
    private let service = "llm-é"

    private func decoded(_ message: Data, id: UInt32) throws -> ControlEnvelope {
        try JSONDecoder().decode(ControlEnvelope.self, from: Data(ControlMessageJSON.envelope(id: id, message: message)))
    }

    /// Canonical bytes of a message, for comparing two of them.
    private func canonical(_ message: ControlMessage) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(message)
    }

    func test_usageBatch_decodesAsTheMessageItStandsFor() throws {
        let records = [
            LLMUsageRecord(at: Date(timeIntervalSince1970: 1_800_000_000.25), identity: "agent", user: "alice", project: "p\n1", model: "gpt",
                           provider: "openai", inputTokens: 12, outputTokens: 34, costUSD: 0.000123),
            LLMUsageRecord(at: Date(), identity: "agent-2", project: nil, model: "claude", provider: "anthropic", inputTokens: 0, outputTokens: 1,
                           costUSD: 0, estimated: true, unpriced: true),
        ]
        let envelope = try decoded(ControlMessageJSON.llmUsage(apiSession: session, service: service, records: ControlMessageJSON.encode(records)), id: 7)
        XCTAssertEqual(envelope.id, 7)
        XCTAssertEqual(envelope.replyTo, 0)
        XCTAssertEqual(try canonical(envelope.message), try canonical(.llmUsage(apiSession: session, service: service, records: records)))
    }

    func test_auditBatch_decodesAsTheMessageItStandsFor() throws {
        let events = [GatewayAuditEvent(type: "llm.request", identity: "agent", user: nil, circuit: 42, detail: #"{"status":200,"note":"a \"quoted\" word"}"#),
                      GatewayAuditEvent(type: "mcp.call", identity: nil, circuit: nil, detail: "")]
        let envelope = try decoded(ControlMessageJSON.auditEvents(apiSession: session, service: service, events: ControlMessageJSON.encode(events)),
                                   id: UInt32.max)
        XCTAssertEqual(envelope.id, UInt32.max)
        XCTAssertEqual(try canonical(envelope.message), try canonical(.auditEvents(apiSession: session, service: service, events: events)))
    }

    func test_usageRecords_everyFieldAndAwkwardNumber_readBackExactly() throws {
        let costs: [Double] = [0, 1, 0.1, 1e-7, 123_456.789, 5e15, 1e300, Double.leastNonzeroMagnitude, 0.000123]
        let records = costs.enumerated().map { index, cost in
            LLMUsageRecord(at: Date(timeIntervalSinceReferenceDate: index.isMultiple(of: 2) ? -1234.5 : 8.765e8 + Double(index) / 3),
                           identity: "agent \u{0}\t\u{1F}", user: "bob@example.com", project: "ünïcode ☃", model: "m", provider: "p",
                           inputTokens: Int.max, outputTokens: -1, costUSD: cost, cachedInputTokens: 3, cacheWriteTokens: 4,
                           reasoningTokens: 5, estimated: false, unpriced: true)
        }
        let decoded = try JSONDecoder().decode([LLMUsageRecord].self, from: ControlMessageJSON.encode(records))
        XCTAssertEqual(decoded, records)
    }

    func test_usageRecord_withANumberJSONCannotHold_isRefused() {
        for cost in [Double.nan, .infinity, -.infinity] {
            let record = LLMUsageRecord(at: Date(), identity: "a", project: nil, model: "m", provider: "p", inputTokens: 1, outputTokens: 1, costUSD: cost)
            XCTAssertThrowsError(try ControlMessageJSON.encode([record]), "\(cost)")
        }
    }

    func test_auditEvents_everyField_readBackExactly() throws {
        let events = [GatewayAuditEvent(type: "llm.request", identity: "a\"b", user: "u\\", circuit: UInt64.max, detail: "{\"x\":\"\u{7F}\u{2028}\"}"),
                      GatewayAuditEvent(type: "t", identity: nil, user: nil, circuit: 0, detail: "")]
        XCTAssertEqual(try JSONDecoder().decode([GatewayAuditEvent].self, from: ControlMessageJSON.encode(events)), events)
        XCTAssertEqual(try JSONDecoder().decode([GatewayAuditEvent].self, from: ControlMessageJSON.encode([GatewayAuditEvent]())), [])
    }

    func test_okReply_isWhatJSONEncoderWrites_andOnlyItIsRecognised() throws {
        for replyTo: UInt32 in [1, 9, 10, 4_294_967_295] {
            let bytes = ControlMessageJSON.okReply(to: replyTo)
            let envelope = try JSONDecoder().decode(ControlEnvelope.self, from: Data(bytes))
            XCTAssertEqual(envelope.replyTo, replyTo)
            XCTAssertEqual(envelope.id, 0)
            guard case .ok = envelope.message else { return XCTFail("\(envelope.message)") }
            XCTAssertEqual(bytes.withUnsafeBytes { ControlMessageJSON.okReply(in: $0) }, replyTo)
        }
        for other in [#"{"id":0,"replyTo":0,"message":{"ok":{}}}"#, #"{"id":0,"replyTo":01,"message":{"ok":{}}}"#,
                      #"{"id":0,"replyTo":4294967296,"message":{"ok":{}}}"#, #"{"id":0,"replyTo":1a,"message":{"ok":{}}}"#,
                      #"{"id":0,"replyTo":,"message":{"ok":{}}}"#, #"{"id":1,"replyTo":2,"message":{"ok":{}}}"#,
                      #"{"id":0,"replyTo":2,"message":{"failure":{"message":"no"}}}"#, "", "{}"] {
            XCTAssertNil(Array(other.utf8).withUnsafeBytes { ControlMessageJSON.okReply(in: $0) }, other)
        }
    }
}
