import Foundation
import Shared

/// JSON Schema → the OpenAPI 3.0 subset Gemini takes for `responseSchema` and function
/// parameters: `$ref`s are inlined from `$defs`/`definitions` (to a bounded depth), a type list
/// with `null` becomes `nullable`, `const` becomes a one-value `enum`, `oneOf` becomes `anyOf`, and
/// keywords Gemini rejects (`$schema`, `additionalProperties`, `$id`, `examples`, …) are dropped.
enum GeminiSchema {
    static let kept: Set<String> = ["type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
                                    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
                                    "propertyOrdering", "default", "items", "minimum", "maximum"]

    static func translate(_ schema: JSONValue) -> JSONValue {
        let definitions = schema["$defs"]?.objectValue ?? schema["definitions"]?.objectValue ?? [:]
        return convert(schema, definitions: definitions, depth: 0)
    }

    private static func convert(_ schema: JSONValue, definitions: [String: JSONValue], depth: Int) -> JSONValue {
        guard var object = schema.objectValue, depth < 32 else { return schema.objectValue == nil ? schema : .object(["type": .string("object")]) }
        if let reference = object["$ref"]?.stringValue, let name = reference.split(separator: "/").last, let target = definitions[String(name)] {
            var merged = target.objectValue ?? [:]
            for (key, value) in object where key != "$ref" { merged[key] = value }
            return convert(.object(merged), definitions: definitions, depth: depth + 1)
        }
        if let constant = object.removeValue(forKey: "const") { object["enum"] = .array([constant]) }
        if let one = object.removeValue(forKey: "oneOf") { object["anyOf"] = one }
        if case .array(let types)? = object["type"] {
            let names = types.compactMap(\.stringValue)
            if names.contains("null") { object["nullable"] = .bool(true) }
            object["type"] = names.first { $0 != "null" }.map { .string($0) } ?? .string("string")
        }
        var out: [String: JSONValue] = [:]
        for (key, value) in object where kept.contains(key) {
            switch key {
            case "properties":
                out[key] = .object((value.objectValue ?? [:]).mapValues { convert($0, definitions: definitions, depth: depth + 1) })
            case "items":
                out[key] = convert(value, definitions: definitions, depth: depth + 1)
            case "anyOf":
                out[key] = .array((value.arrayValue ?? []).map { convert($0, definitions: definitions, depth: depth + 1) })
            default:
                out[key] = value
            }
        }
        return .object(out)
    }
}
