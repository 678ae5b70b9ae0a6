import ArgumentParser
import Shared

@main
struct PortlessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portless",
        abstract: "Operate a Portless network: identities, services, policies, topologies, audit.",
        subcommands: [Login.self, IdentityCommand.self, RouterCommand.self, ControllersCommand.self, ServiceCommand.self, ConfigCommand.self,
                      PolicyCommand.self, SignerCommand.self, LinkCommand.self, NetworkCommand.self, AuditCommand.self, MCPCommand.self, UsageCommand.self, TopologyCommand.self, DemoHTTPCommand.self, DemoEchoCommand.self])
}
