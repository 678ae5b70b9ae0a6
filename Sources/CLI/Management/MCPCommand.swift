import ArgumentParser
import Foundation
import Shared

struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mcp", abstract: "MCP gateway operations: tool definition pins, and who sees what.",
                                                    subcommands: [Pins.self, Approve.self, Catalog.self, Visible.self, Callers.self])
    struct Catalog: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What the MCP gateway hosting a service offers, as it last reported it.")
        @Argument(help: "The gateway's service.") var service: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().get("/v1/mcp/catalog" + queryString(["service": service]), as: GatewayCatalog.self))
        }
    }
    struct Visible: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The tools, resources and prompts a gateway shows one identity.")
        @Argument(help: "The gateway's service.") var service: String
        @Argument var identity: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().get("/v1/mcp/visible" + queryString(["service": service, "identity": identity]), as: MCPVisibleItems.self))
        }
    }
    struct Callers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Who can call a tool (read a resource, get a prompt) through a gateway.")
        @Argument(help: "The gateway's service.") var service: String
        @Argument(help: "The name callers see (server__tool, a prompt, a resource URI).") var name: String
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().get("/v1/mcp/callers" + queryString(["service": service, "name": name]), as: MCPItemCallers.self))
        }
    }
    struct Pins: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Tool definitions as pinned; a pendingHash marks a change waiting for approval.")
        @Option(help: "Only this gateway service.") var service: String?
        @OptionGroup var options: ProfileOption
        func run() async throws {
            let query = service.map { "?service=\($0)" } ?? ""
            printJSON(try await options.client().get("/v1/mcp/pins" + query, as: [ToolPin].self))
        }
    }
    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve changed tool definitions so the gateway shows them again.")
        @Argument(help: "The gateway's service.") var service: String
        @Argument(help: "Tools (server__tool) to approve; all pending ones when none are named.") var tools: [String] = []
        @OptionGroup var options: ProfileOption
        func run() async throws {
            printJSON(try await options.client().post("/v1/mcp/approve", ToolApproval(service: service, tools: tools.isEmpty ? nil : tools),
                                                      as: ToolApprovalResult.self))
        }
    }
}
