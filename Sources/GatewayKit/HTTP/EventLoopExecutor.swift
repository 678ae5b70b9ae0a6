import NIOCore

/// Runs a gateway connection's async work on the event loop its socket lives on.
///
/// A gateway request is read from a NIO channel, answered from a pooled upstream connection on
/// the same loop, and written back to that channel. Without a preference each `await` in between
/// resumes on Swift Concurrency's shared pool, so every read, every write and every upstream
/// answer crosses threads — on a two-core host that was much of what a short request cost. With
/// this executor preferred (`withTaskExecutorPreference`), the connection's task and the
/// nonisolated code it calls run on the channel's loop thread, and NIO's async channel writers
/// take their fast path straight to the socket.
///
/// Only code that never blocks may run here: a blocking call stalls every connection on the
/// loop (as it would stall one of the shared pool's two threads). Blocking work (SQLite, files)
/// goes through GRDB's async API or a thread of its own.
public final class EventLoopExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
