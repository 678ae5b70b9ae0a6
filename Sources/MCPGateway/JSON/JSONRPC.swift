import Foundation
import GatewayKit
import Shared

/// JSON-RPC 2.0 as MCP uses it: requests, notifications and responses, with MCP's error codes.
public enum JSONRPC {
    static let parseError = -32700
    static let invalidRequest = -32600
    static let methodNotFound = -32601
    static let invalidParams = -32602
    static let internalError = -32603
    /// MCP: the request timed out (a gateway upstream did not answer in time).
    static let requestTimeout = -32001
    public static let connectionClosed = -32000
    static let resourceNotFound = -32002
    static let headerMismatch = -32020
    static let unsupportedProtocolVersion = -32022

    /// One decoded message.
    enum Message {
        case request(id: JSONValue, method: String, params: JSONValue?)
        case notification(method: String, params: JSONValue?)
        case response(id: JSONValue, result: JSONValue)
        case error(id: JSONValue, error: RPCError)

        init(_ value: JSONValue) throws {
            guard case .object(let object) = value else { throw RPCError(code: invalidRequest, message: "a JSON-RPC message must be an object") }
            guard object["jsonrpc"]?.stringValue == "2.0" else {
                throw RPCError(code: invalidRequest, message: "a JSON-RPC message needs \"jsonrpc\": \"2.0\"")
            }
            let id = object["id"]
            if let method = object["method"] {
                guard let name = method.stringValue, !name.isEmpty else { throw RPCError(code: invalidRequest, message: "\"method\" must be a non-empty string") }
                if let params = object["params"], params.objectValue == nil, params.arrayValue == nil {
                    throw RPCError(code: invalidRequest, message: "\"params\" must be an object")
                }
                if let id {
                    switch id {
                    case .string, .number: self = .request(id: id, method: name, params: object["params"])
                    default: throw RPCError(code: invalidRequest, message: "\"id\" must be a string or a number")
                    }
                } else {
                    self = .notification(method: name, params: object["params"])
                }
            } else if let id, let result = object["result"] {
                self = .response(id: id, result: result)
            } else if let id, let error = object["error"] {
                self = .error(id: id, error: RPCError(code: error["code"]?.intValue ?? internalError,
                                                      message: error["message"]?.stringValue ?? "error", data: error["data"]))
            } else {
                throw RPCError(code: invalidRequest, message: "a JSON-RPC message needs \"method\", \"result\" or \"error\"")
            }
        }
    }

    static func request(id: JSONValue, method: String, params: JSONValue?) -> JSONValue {
        var object: [String: JSONValue] = ["jsonrpc": .string("2.0"), "id": id, "method": .string(method)]
        if let params { object["params"] = params }
        return .object(object)
    }

    static func notification(_ method: String, params: JSONValue?) -> JSONValue {
        var object: [String: JSONValue] = ["jsonrpc": .string("2.0"), "method": .string(method)]
        if let params { object["params"] = params }
        return .object(object)
    }

    static func response(id: JSONValue, result: JSONValue) -> JSONValue {
        .object(["jsonrpc": .string("2.0"), "id": id, "result": result])
    }

    public static func response(id: JSONValue, error: RPCError) -> JSONValue {
        var body: [String: JSONValue] = ["code": .number(Double(error.code)), "message": .string(error.message)]
        if let data = error.data { body["data"] = data }
        return .object(["jsonrpc": .string("2.0"), "id": id, "error": .object(body)])
    }
}

/// A JSON-RPC error, from an upstream or made by the gateway.
public struct RPCError: Error, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "\(message) (\(code))" }
}
