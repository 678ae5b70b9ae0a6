import Hummingbird

/// What a caller of the management API (or the console) is told when the store fails: the
/// database's own words, and 503 while PostgreSQL cannot be reached — not a bare 500.
extension PostgresStoreError: HTTPResponseError {
    var status: HTTPResponse.Status { isTransient ? .serviceUnavailable : .internalServerError }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try HTTPError(status, message: "the controller's store failed: \(description)").response(from: request, context: context)
    }
}

extension StoreConflict: HTTPResponseError {
    var status: HTTPResponse.Status { .conflict }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try HTTPError(status, message: "already exists: \(message)").response(from: request, context: context)
    }
}
