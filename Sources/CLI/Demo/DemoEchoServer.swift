import ArgumentParser
import Shared

/// `portless demo-echo`: writes back every byte it reads. The benchmark's round-trip target.
struct DemoEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo-echo", abstract: "Run a TCP echo service (for benchmarks).")
    @Option(help: "Listen address: 127.0.0.1:PORT or unix:/path.") var listen: String

    func run() throws {
        let address = try LocalAddress(parsing: listen)
        ResourceLimits.raiseOpenFileLimit()
        let loop = try EventLoop()
        SignalHandling.stopOnTermination(loop)
        var listener: AnyObject?
        try loop.run {
            listener = try LocalListener.listen(loop: loop, on: address) { connection in
                connection.onRead = { [unowned connection] bytes in
                    connection.write(bytes)
                    if connection.queuedBytes > TransportLimits.writeHighWaterMark { connection.stopReading() }
                }
                connection.onWritable = { [unowned connection] in connection.startReading() }
                connection.startReading()
            }
            print("demo-echo listening on \(address)")
        }
        withExtendedLifetime(listener) {}
    }
}
