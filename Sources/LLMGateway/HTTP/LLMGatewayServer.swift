import GatewayKit
import Logging

/// The LLM gateway served on its private socket.
public final class LLMGatewayServer: Sendable {
    public let gateway: LLMGateway
    private let http: PrivateHTTPServer

    public var socketPath: String { http.socketPath }

    public init(gateway: LLMGateway, socketPath: String, logger: Logger) {
        self.gateway = gateway
        self.http = PrivateHTTPServer(socketPath: socketPath, maxBody: OpenAIHTTPHandler.maxBody, logger: logger)
    }

    public func start() async throws {
        let handler = OpenAIHTTPHandler(gateway: gateway, callers: http.callers)
        gateway.start()
        try await http.start { request, writer, channel in try await handler.respond(request, writer, channel) }
    }

    public func stop() async {
        http.stop()
        await gateway.stop()
    }
}
