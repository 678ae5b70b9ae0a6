import ArgumentParser
import Foundation
import Shared

struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topology", abstract: "Start, inspect and stop a whole network from a topology file.",
                                                    subcommands: [Up.self, Apply.self, Status.self, Down.self, Check.self, Bundle.self])

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the PKI, enroll everything, start every process; return when ready.")
        @Argument(help: "Topology file (YAML).") var file: String
        @Option(help: "State directory (keys, database, logs).") var state: String
        @Flag(help: "Put each host of the file in its own network namespace (needs root).") var netns = false

        func run() async throws {
            let topology = try TopologyFile.load(file)
            var deployer = TopologyDeployer(topology: topology, state: state, file: file)
            let (status, _) = try await deployer.up(inNamespaces: netns)
            print("Portless network '\(topology.network ?? "portless")' is up (state: \(state))")
            print("  controller  \(status.controller ?? "?")   (admin profile: \(state)/profile.json)")
            if let controller = status.controller {
                print("  console     \(controller)/console/   (user admin, password in \(state)/controller/admin.json)")
            }
            for process in status.processes {
                print("  \(process.kind.padding(toLength: 10, withPad: " ", startingAt: 0)) \(process.name.padding(toLength: 14, withPad: " ", startingAt: 0)) pid \(process.pid)  log \(process.log)"
                      + (process.metrics.map { "  metrics http://\($0)/metrics" } ?? ""))
            }
            for intercept in status.intercepts {
                print("  intercept   \(intercept.service) → \(intercept.address)  (on \(intercept.tunneler))")
            }
            if let netns = status.netns {
                for host in netns.hosts {
                    print("  host        \(host): namespace \(netns.namespace(host)), \(netns.address(host))\(netns.enterprise.contains(host) ? ", inbound dropped" : "")")
                }
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reconcile a running network to the file (idempotent): add or remove routers, identities, services, policies, tunnelers.")
        @Argument(help: "Topology file (YAML).") var file: String
        @Option(help: "State directory of the running network.") var state: String

        func run() async throws {
            let topology = try TopologyFile.load(file)
            var deployer = TopologyDeployer(topology: topology, state: state, file: file)
            let (_, changes) = try await deployer.apply()
            if changes.isEmpty {
                print("no changes: the network matches \(file)")
            } else {
                for change in changes { print(change) }
                print("\(changes.count) change(s) applied")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show what a topology started.")
        @Option var state: String
        @Flag var json = false
        @Option(help: "Print only the address of this service's intercept (for scripts).") var intercept: String?

        func run() throws {
            guard FileManager.default.fileExists(atPath: TopologyState.path(state)) else {
                throw ValidationError("no topology is running from \(state)")
            }
            let status = try Files.readJSON(TopologyState.self, from: TopologyState.path(state))
            if let intercept {
                guard let found = status.intercepts.first(where: { $0.service == intercept }) else {
                    throw ValidationError("no intercept for service '\(intercept)' in \(state)")
                }
                print(found.address)
                return
            }
            if json {
                struct Output: Encodable { var processes: [TopologyState.Process]; var intercepts: [TopologyState.Intercept] }
                printJSON(Output(processes: status.processes, intercepts: status.intercepts))
                return
            }
            for process in status.processes {
                let alive = ProcessLauncher.isAlive(process.pid) ? "running" : "stopped"
                print("\(process.kind)\t\(process.name)\tpid \(process.pid)\t\(alive)\t\(process.log)"
                      + (process.metrics.map { "\thttp://\($0)/metrics" } ?? ""))
            }
            for intercept in status.intercepts { print("intercept\t\(intercept.service)\t\(intercept.address)\t\(intercept.tunneler)") }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop everything a topology started.")
        @Option var state: String

        func run() throws {
            guard FileManager.default.fileExists(atPath: TopologyState.path(state)) else {
                print("nothing is running from \(state)")
                return
            }
            let status = try Files.readJSON(TopologyState.self, from: TopologyState.path(state))
            ProcessLauncher.stop(status.processes.map(\.pid).reversed())
            if let postgres = status.postgres {
                do { try LocalPostgres(directory: postgres).stop() } catch { print("warning: the network's PostgreSQL did not stop: \(error)") }
            }
            status.netns?.destroy()
            try FileManager.default.removeItem(atPath: TopologyState.path(state))
            print("Stopped \(status.processes.count) processes")
        }
    }

    struct Bundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write one bundle per host (configs, enrollment tokens, systemd units, README) for a multi-host deployment.")
        @Argument(help: "Topology file with 'hosts:' that have addresses.") var file: String
        @Option(help: "Directory to create.") var out: String

        func run() async throws {
            let topology = try TopologyFile.load(file)
            for line in try await TopologyBundle(topology: topology, out: out).write() { print(line) }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a topology file without starting anything.")
        @Argument var file: String
        func run() throws {
            _ = try TopologyFile.load(file)
            print("\(file): ok")
        }
    }
}
