import Foundation
import HTTPTypes
import HummingbirdCore
import NIOCore

extension ResponseWriter {
    /// One JSON response with its length.
    public consuming func json(_ body: Data, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = HTTPFields()) async throws {
        var fields = extra
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.count)
        try await write(response: HTTPResponse(status: status, headerFields: fields), body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension HTTPFields {
    /// Fields from name/value pairs; names that are not valid HTTP field names are skipped.
    public init(pairs: [(String, String)]) {
        self.init()
        for (name, value) in pairs { if let field = HTTPField.Name(name) { self[field] = value } }
    }
}
