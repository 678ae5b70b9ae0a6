import CLibUV
import Foundation

/// One libuv loop driven by one thread.
///
/// Invariant: the loop and every handle created on it are used only on the loop's thread.
/// Other threads reach it only through `execute`, which appends to a locked queue and wakes
/// the loop with `uv_async_send` (the one libuv call that is thread-safe).
public final class EventLoop: @unchecked Sendable {
    // safe: `uvLoop` and `wakeup` are touched only on the loop thread (after init), `pending`
    // only under `lock`, `threadID` is written once before any handle callback can run.
    let uvLoop: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let lock = NSLock()
    private var pending: [@Sendable () -> Void] = []
    private var threadID: pthread_t?

    public init() throws {
        // libuv writes to sockets with write(2), which raises SIGPIPE when the peer has gone; the
        // loop reports that as an error on the stream, so no process that runs one may die of the
        // signal instead (the test process did, when a router cut off a sender mid-write).
        signal(SIGPIPE, SIG_IGN)
        uvLoop = .allocate(capacity: 1)
        wakeup = .allocate(capacity: 1)
        try UVError.check(uv_loop_init(uvLoop), "uv_loop_init")
        try UVError.check(uv_async_init(uvLoop, wakeup) { async in
            guard let data = async?.pointee.data else { return }
            Unmanaged<EventLoop>.fromOpaque(data).takeUnretainedValue().runPending()
        }, "uv_async_init")
        wakeup.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// Runs the loop on the calling thread until `stop()`. `setup` runs first, on this thread,
    /// already inside the loop: it is where a process creates its loop-confined objects.
    public func run(setup: () throws -> Void) rethrows {
        lock.withLock { threadID = pthread_self() }
        try setup()
        runPending()
        uv_run(uvLoop, UV_RUN_DEFAULT)
    }

    /// Starts a dedicated thread that runs the loop.
    public static func startThread(name: String) throws -> EventLoop {
        let loop = try EventLoop()
        let started = DispatchSemaphore(value: 0)
        let thread = Thread {
            loop.lock.withLock { loop.threadID = pthread_self() }
            started.signal()
            loop.run(setup: {})
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
        started.wait()
        return loop
    }

    /// Where every stream on this loop reads into. Reads are delivered one at a time on the loop
    /// thread and consumed before the next, so one buffer serves them all.
    lazy var readBuffer: UnsafeMutableRawBufferPointer = .allocate(byteCount: TransportLimits.readChunk, alignment: 16)

    /// Where outgoing frames are encoded and sealed before they are written. A write hands its
    /// bytes to the kernel (or copies what the kernel refused) before returning, so one buffer
    /// serves every connection on the loop.
    private var writeScratch = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    func writeBuffer(atLeast count: Int) -> UnsafeMutableRawBufferPointer {
        if writeScratch.count < count {
            writeScratch.deallocate()
            writeScratch = .allocate(byteCount: max(count, 64 * 1024), alignment: 16)
        }
        return writeScratch
    }

    /// The loop's clock in milliseconds (cached per loop iteration, as libuv does).
    public var nowMs: UInt64 { uv_now(uvLoop) }

    public var inEventLoop: Bool {
        lock.withLock { threadID.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    public func preconditionInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop, "called off the event loop thread", file: file, line: line)
    }

    /// Runs `work` on the loop thread, soon. Safe from any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        lock.withLock { pending.append(work) }
        uv_async_send(wakeup)
    }

    /// Runs `work` on the loop thread and returns its result to an async caller.
    public func submit<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            execute { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Stops the loop: pending handles are closed and `run()` returns.
    public func stop() {
        execute { [self] in
            uv_walk(uvLoop, { handle, _ in
                if let handle, uv_is_closing(handle) == 0, handle.pointee.type != UV_ASYNC {
                    // Handles are owned by their wrappers; closing here only lets run() return.
                    uv_unref(handle)
                }
            }, nil)
            uv_close(uvHandle(wakeup), nil)
            uv_stop(uvLoop)
        }
    }

    private func runPending() {
        let work = lock.withLock { () -> [@Sendable () -> Void] in
            let taken = pending
            pending.removeAll(keepingCapacity: true)
            return taken
        }
        for item in work { item() }
    }
}

/// Carries a loop-confined value across threads; it may be read only on its loop.
public struct LoopBound<Value>: @unchecked Sendable {
    // safe: `value` is only dereferenced after asserting we are on `loop`'s thread.
    private let stored: Value
    public let loop: EventLoop

    public init(_ value: Value, loop: EventLoop) {
        self.stored = value
        self.loop = loop
    }

    public var value: Value {
        loop.preconditionInEventLoop()
        return stored
    }
}
