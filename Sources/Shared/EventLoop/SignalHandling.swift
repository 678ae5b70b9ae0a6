import Foundation

public enum SignalHandling {
    /// Stops `loop` on SIGTERM or SIGINT so the process exits cleanly.
    public static func stopOnTermination(_ loop: EventLoop) {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { loop.stop() }
            source.resume()
            retained.withLock { $0.append(source) }
        }
    }

    private static let retained = Locked<[DispatchSourceSignal]>([])
}
