import GatewayKit
import Logging

/// The MCP gateway served on its private socket.
public final class MCPGatewayServer: Sendable {
    public let gateway: MCPGateway
    private let http: PrivateHTTPServer

    public var socketPath: String { http.socketPath }

    public init(gateway: MCPGateway, socketPath: String, logger: Logger) {
        self.gateway = gateway
        self.http = PrivateHTTPServer(socketPath: socketPath, maxBody: StreamableHTTPHandler.maxBody, logger: logger)
    }

    public func start() async throws {
        let handler = StreamableHTTPHandler(gateway: gateway, callers: http.callers, allowedOrigins: gateway.config.allowedOrigins ?? [])
        await gateway.start()
        try await http.start { request, writer, channel in try await handler.respond(request, writer, channel) }
    }

    public func stop() async {
        http.stop()
        await gateway.stop()
    }
}
