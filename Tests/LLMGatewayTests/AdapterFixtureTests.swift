import Foundation
import GatewayKit
import Shared
import XCTest
@testable import LLMGateway

/// Translations against examples from each provider's public API reference.
final class AdapterFixtureTests: XCTestCase {
    private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }

    private let toolRequest = """
    {"model":"auto","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Weather in SF?"},
     {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\\"location\\":\\"San Francisco, CA\\"}"}}]},
     {"role":"tool","tool_call_id":"call_1","content":"15 degrees"}],
     "tools":[{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}}],
     "max_tokens":200,"temperature":0.2,"stop":"END"}
    """

    func testAnthropic_requestTranslation() throws {
        let body = AnthropicAdapter.translate(try json(toolRequest), model: ModelConfig(name: "claude", upstream: "claude-sonnet-4-5"), stream: true)
        XCTAssertEqual(body["system"], .string("Be brief."))
        XCTAssertEqual(body["max_tokens"], .number(200))
        XCTAssertEqual(body["stop_sequences"], .array([.string("END")]))
        XCTAssertEqual(body["stream"], .bool(true))
        let messages = body["messages"]?.arrayValue ?? []
        XCTAssertEqual(messages.map { $0["role"]?.stringValue }, ["user", "assistant", "user"])
        XCTAssertEqual(messages[1]["content"]?.arrayValue?.first?["type"], .string("tool_use"))
        XCTAssertEqual(messages[1]["content"]?.arrayValue?.first?["input"]?["location"], .string("San Francisco, CA"))
        XCTAssertEqual(messages[2]["content"]?.arrayValue?.first?["type"], .string("tool_result"))
        XCTAssertEqual(messages[2]["content"]?.arrayValue?.first?["tool_use_id"], .string("call_1"))
        XCTAssertEqual(body["tools"]?.arrayValue?.first?["input_schema"]?["type"], .string("object"))
    }

    func testAnthropic_toolUseResponse_fromTheReference() throws {
        let response = try json("""
        {"id":"msg_01Aq9w938a90dw8q","model":"claude-sonnet-4-5","stop_reason":"tool_use","role":"assistant",
         "content":[{"type":"text","text":"I'll check the current weather in San Francisco for you."},
                    {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius"}}],
         "usage":{"input_tokens":384,"output_tokens":91}}
        """)
        let completion = AnthropicAdapter.chatCompletion(response, model: "claude")
        let choice = completion["choices"]?.arrayValue?.first
        XCTAssertEqual(choice?["finish_reason"], .string("tool_calls"))
        let call = choice?["message"]?["tool_calls"]?.arrayValue?.first
        XCTAssertEqual(call?["id"], .string("toolu_01A09q90qw90lq917835lq9"))
        XCTAssertEqual(call?["function"]?["name"], .string("get_weather"))
        let arguments = try JSONValue.parse(Data((call?["function"]?["arguments"]?.stringValue ?? "").utf8))
        XCTAssertEqual(arguments["unit"], .string("celsius"))
        XCTAssertEqual(completion["usage"]?["prompt_tokens"], .number(384))
        XCTAssertEqual(completion["usage"]?["total_tokens"], .number(475))
    }

    func testAnthropic_streamEventSequence_fromTheReference() throws {
        let events = [
            #"{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#,
            #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"{"type":"ping"}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}"#,
            #"{"type":"content_block_stop","index":0}"#,
            #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            #"{"type":"message_stop"}"#,
        ]
        var translator = AnthropicAdapter.StreamTranslator(model: "claude")
        var chunks: [JSONValue] = []
        for event in events { chunks += try translator.translate(try json(event)) }
        let text = chunks.compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined()
        XCTAssertEqual(text, "Hello!")
        XCTAssertEqual(chunks.compactMap { $0["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue }, ["stop"])
        XCTAssertEqual(chunks.last?["usage"]?["prompt_tokens"], .number(25))
        XCTAssertEqual(chunks.last?["usage"]?["completion_tokens"], .number(15))
        XCTAssertThrowsError(try translator.translate(try json(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)))
    }

    func testBedrock_converse_fromTheReference() throws {
        let body = BedrockAdapter.translate(try json(toolRequest))
        XCTAssertEqual(body["system"]?.arrayValue?.first?["text"], .string("Be brief."))
        XCTAssertEqual(body["inferenceConfig"]?["maxTokens"], .number(200))
        XCTAssertEqual(body["toolConfig"]?["tools"]?.arrayValue?.first?["toolSpec"]?["inputSchema"]?["json"]?["type"], .string("object"))
        XCTAssertEqual(body["messages"]?.arrayValue?.last?["content"]?.arrayValue?.first?["toolResult"]?["toolUseId"], .string("call_1"))
        let response = try json(#"{"output":{"message":{"role":"assistant","content":[{"text":"Here is a song."}]}},"stopReason":"end_turn","usage":{"inputTokens":30,"outputTokens":628,"totalTokens":658},"metrics":{"latencyMs":1275}}"#)
        let completion = BedrockAdapter.chatCompletion(response, model: "nova")
        XCTAssertEqual(completion["choices"]?.arrayValue?.first?["message"]?["content"], .string("Here is a song."))
        XCTAssertEqual(completion["usage"]?["completion_tokens"], .number(628))
    }

    func testBedrock_eventStreamFraming_roundTrips_andRejectsCorruption() throws {
        let frame = EventStreamDecoder.encode(headers: [(":event-type", "contentBlockDelta"), (":message-type", "event")],
                                              payload: Data(#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#.utf8))
        var decoder = EventStreamDecoder()
        XCTAssertEqual(try decoder.feed(frame.prefix(10)), [])
        let messages = try decoder.feed(frame.dropFirst(10) + frame)
        XCTAssertEqual(messages.count, 2)
        XCTAssertEqual(messages.first?.headers[":event-type"], "contentBlockDelta")
        var translator = BedrockAdapter.StreamTranslator(model: "nova")
        let chunk = translator.translate(event: "contentBlockDelta", try JSONValue.parse(messages[0].payload)).first
        XCTAssertEqual(chunk?["choices"]?.arrayValue?.first?["delta"]?["content"], .string("Hi"))
        var corrupt = [UInt8](frame)
        corrupt[corrupt.count - 6] ^= 0xFF
        var other = EventStreamDecoder()
        XCTAssertThrowsError(try other.feed(corrupt))
    }

    func testSigV4_matchesTheAWSTestSuite() {
        // "get-vanilla" from the AWS Signature Version 4 test suite.
        var components = DateComponents()
        components.year = 2015; components.month = 8; components.day = 30; components.hour = 12; components.minute = 36
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let date = calendar.date(from: components) ?? Date()
        let signer = SigV4(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: nil, region: "us-east-1", service: "service")
        let headers = signer.sign(method: "GET", host: "example.amazonaws.com", path: "/", body: Data(), date: date, signContentHash: false)
        let authorization = headers.first { $0.0 == "Authorization" }?.1
        XCTAssertEqual(authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    func testVertex_generateContent_fromTheReference() throws {
        let body = VertexAdapter.translate(try json(toolRequest))
        XCTAssertEqual(body["systemInstruction"]?["parts"]?.arrayValue?.first?["text"], .string("Be brief."))
        let contents = body["contents"]?.arrayValue ?? []
        XCTAssertEqual(contents.map { $0["role"]?.stringValue }, ["user", "model", "user"])
        XCTAssertEqual(contents[2]["parts"]?.arrayValue?.first?["functionResponse"]?["name"], .string("get_weather"))
        XCTAssertEqual(body["generationConfig"]?["maxOutputTokens"], .number(200))
        XCTAssertEqual(body["tools"]?.arrayValue?.first?["functionDeclarations"]?.arrayValue?.first?["name"], .string("get_weather"))
        let response = try json(#"{"candidates":[{"content":{"role":"model","parts":[{"text":"The sky is blue."}]},"finishReason":"STOP","safetyRatings":[]}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":9,"totalTokenCount":17},"modelVersion":"gemini-2.0-flash"}"#)
        let completion = VertexAdapter.chatCompletion(response, model: "gemini")
        XCTAssertEqual(completion["choices"]?.arrayValue?.first?["message"]?["content"], .string("The sky is blue."))
        XCTAssertEqual(completion["choices"]?.arrayValue?.first?["finish_reason"], .string("stop"))
        XCTAssertEqual(completion["usage"]?["total_tokens"], .number(17))
    }

    func testVertex_serviceAccountAssertion_isAnRS256JWT() throws {
        let key = try _RSAKeyFixture.pem()
        let jwt = try ServiceAccountToken.assertion(email: "a@p.iam.gserviceaccount.com", pem: key, keyID: "k1", audience: "https://oauth2.googleapis.com/token",
                                                    now: Date(timeIntervalSince1970: 1_700_000_000))
        let parts = jwt.split(separator: ".")
        XCTAssertEqual(parts.count, 3)
        func decode(_ part: Substring) throws -> JSONValue {
            var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while text.count % 4 != 0 { text += "=" }
            return try JSONValue.parse(Data(base64Encoded: text) ?? Data())
        }
        XCTAssertEqual(try decode(parts[0])["alg"], .string("RS256"))
        XCTAssertEqual(try decode(parts[1])["exp"], .number(1_700_003_600))
        XCTAssertEqual(try decode(parts[1])["scope"], .string("https://www.googleapis.com/auth/cloud-platform"))
    }

    func testOllama_chat_fromTheReference() throws {
        let body = OllamaAdapter.translate(try json(toolRequest), model: "llama3.2", stream: false)
        XCTAssertEqual(body["options"]?["num_predict"], .number(200))
        XCTAssertEqual(body["messages"]?.arrayValue?[2]["tool_calls"]?.arrayValue?.first?["function"]?["arguments"]?["location"], .string("San Francisco, CA"))
        let response = try json(#"{"model":"llama3.2","created_at":"2023-12-12T14:13:43.416799Z","message":{"role":"assistant","content":"Hello! How are you today?"},"done":true,"total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":26,"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}"#)
        XCTAssertEqual(OllamaAdapter.message(response)["content"], .string("Hello! How are you today?"))
        XCTAssertEqual(OllamaAdapter.usage(response)?["total_tokens"], .number(324))
    }
}
