import Foundation
import GatewayKit
import Shared
import XCTest
@testable import LLMGateway

/// What used to be lost or mistranslated between providers: images to Bedrock, Gemini's tool
/// call ids and schemas, Anthropic's output limit, and parameters a provider has no equivalent for.
final class FidelityTests: XCTestCase {
    private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }
    private let pixel = "data:image/png;base64,iVBORw0KGgo="

    func test_bedrock_receivesImages_inline() throws {
        let request = try json(#"{"messages":[{"role":"user","content":[{"type":"text","text":"What is it?"},{"type":"image_url","image_url":{"url":"\#(pixel)"}}]}]}"#)
        let body = BedrockAdapter.translate(request)
        let blocks = body["messages"]?.arrayValue?.first?["content"]?.arrayValue ?? []
        XCTAssertEqual(blocks.count, 2)
        XCTAssertEqual(blocks[1]["image"]?["format"], .string("png"))
        XCTAssertEqual(blocks[1]["image"]?["source"]?["bytes"], .string("iVBORw0KGgo="))
        let byURL = try json(#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}"#)
        XCTAssertNotNil(BedrockAdapter(config: ProviderConfig(name: "b", type: .bedrock, models: [])).unsupported(byURL, model: ModelConfig(name: "m")),
                        "an image Bedrock cannot take is refused, not dropped")
    }

    func test_gemini_toolCallsGetIdsOfTheirOwn_andResultsMapToTheirFunction() throws {
        let first = VertexAdapter.toolCall(.object(["name": .string("search"), "args": .object([:])]), index: 0)
        let second = VertexAdapter.toolCall(.object(["name": .string("lookup"), "args": .object([:])]), index: 0)
        XCTAssertNotEqual(first["id"], second["id"], "two turns' first calls must not share an id")
        let conversation: JSONValue = .object(["messages": .array([
            .object(["role": .string("user"), "content": .string("go")]),
            .object(["role": .string("assistant"), "tool_calls": .array([first])]),
            .object(["role": .string("tool"), "tool_call_id": first["id"] ?? .null, "content": .string("{\"a\":1}")]),
            .object(["role": .string("assistant"), "tool_calls": .array([second])]),
            .object(["role": .string("tool"), "tool_call_id": first["id"] ?? .null, "content": .string("{\"b\":2}")]),
        ])])
        let contents = VertexAdapter.translate(conversation)["contents"]?.arrayValue ?? []
        let responses = contents.flatMap { $0["parts"]?.arrayValue ?? [] }.compactMap { $0["functionResponse"]?["name"]?.stringValue }
        XCTAssertEqual(responses, ["search", "search"], "a result names the function of the call it answers")
    }

    func test_gemini_getsTheSchemaSubsetItTakes() throws {
        let schema = try json(#"""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,
         "properties":{"city":{"type":["string","null"]},"kind":{"const":"town"},"owner":{"$ref":"#/$defs/person"}},
         "required":["city"],"$defs":{"person":{"type":"object","properties":{"name":{"type":"string"}}}}}
        """#)
        let translated = GeminiSchema.translate(schema)
        XCTAssertNil(translated["$schema"])
        XCTAssertNil(translated["additionalProperties"])
        XCTAssertEqual(translated["properties"]?["city"]?["type"], .string("string"))
        XCTAssertEqual(translated["properties"]?["city"]?["nullable"], .bool(true))
        XCTAssertEqual(translated["properties"]?["kind"]?["enum"], .array([.string("town")]))
        XCTAssertEqual(translated["properties"]?["owner"]?["properties"]?["name"]?["type"], .string("string"), "a $ref is inlined")
        XCTAssertEqual(translated["required"], .array([.string("city")]))
    }

    func test_anthropic_defaultsToTheModelsMaximum_notTo1024() throws {
        let request = try json(#"{"messages":[{"role":"user","content":"hi"}]}"#)
        XCTAssertEqual(AnthropicAdapter.translate(request, model: ModelConfig(name: "c", upstream: "claude-sonnet-4-5"), stream: false)["max_tokens"], .number(64_000))
        var configured = ModelConfig(name: "c", upstream: "claude-x")
        configured.maxOutputTokens = 12_345
        XCTAssertEqual(AnthropicAdapter.translate(request, model: configured, stream: false)["max_tokens"], .number(12_345))
    }

    func test_parametersAProviderCannotHonor_areRefusedOrTranslated_neverIgnored() throws {
        let model = ModelConfig(name: "m", upstream: "claude-sonnet-4-5")
        let anthropic = AnthropicAdapter(config: ProviderConfig(name: "a", type: .anthropic, models: []))
        for (body, phrase) in [(#"{"n":2}"#, "one choice"), (#"{"logprobs":true}"#, "logprobs"), (#"{"seed":7}"#, "seed")] {
            XCTAssertTrue(anthropic.unsupported(try json(body), model: model)?.contains(phrase) == true, body)
        }
        let thinking = AnthropicAdapter.translate(try json(#"{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high","max_tokens":32000}"#),
                                                  model: model, stream: false)
        XCTAssertEqual(thinking["thinking"]?["type"], .string("enabled"), "reasoning_effort becomes extended thinking")
        XCTAssertEqual(thinking["thinking"]?["budget_tokens"], .number(16_384))

        let vertex = VertexAdapter.translate(try json(#"{"messages":[{"role":"user","content":"hi"}],"seed":7,"reasoning_effort":"low","top_k":5}"#))
        XCTAssertEqual(vertex["generationConfig"]?["seed"], .number(7))
        XCTAssertEqual(vertex["generationConfig"]?["thinkingConfig"]?["thinkingBudget"], .number(1024))
        XCTAssertEqual(vertex["generationConfig"]?["topK"], .number(5))

        let ollama = OllamaAdapter.translate(try json(#"{"messages":[{"role":"user","content":"hi"}],"seed":7,"reasoning_effort":"low"}"#), model: "llama3.2", stream: false)
        XCTAssertEqual(ollama["options"]?["seed"], .number(7))
        XCTAssertEqual(ollama["think"], .bool(true))
        let openai = OpenAIAdapter(config: ProviderConfig(name: "o", type: .openai, models: []))
        XCTAssertNil(openai.unsupported(try json(#"{"n":3,"logprobs":true,"seed":1,"reasoning_effort":"high"}"#), model: model), "OpenAI takes them all")
        XCTAssertNotNil(openai.unsupported(try json(#"{"top_k":3}"#), model: model))
    }

    func test_tokenEstimates_areCloseToABytePairTokenizer() {
        // "Hello world, how are you today?" is 8 tokens in cl100k.
        XCTAssertEqual(TokenEstimator.count("Hello world, how are you today?"), 8)
        XCTAssertEqual(TokenEstimator.count("12345678"), 3)
        XCTAssertEqual(TokenEstimator.count("你好世界"), 4)
        let prose = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 20)
        XCTAssertTrue((200...260).contains(TokenEstimator.count(prose)), "\(TokenEstimator.count(prose)) for 200 cl100k tokens")
    }
}
