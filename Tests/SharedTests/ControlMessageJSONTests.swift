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
}
