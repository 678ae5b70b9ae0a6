import CLibUV

/// A libuv timer. Loop-confined; `close()` releases it.
public final class LoopTimer {
    private let handle: UnsafeMutablePointer<uv_timer_t>
    private var callback: (() -> Void)?
    private var closed = false

    public init(loop: EventLoop) {
        loop.preconditionInEventLoop()
        handle = .allocate(capacity: 1)
        uv_timer_init(loop.uvLoop, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Fires after `milliseconds`, then every `repeatMilliseconds` if non-zero.
    public func start(after milliseconds: UInt64, repeat repeatMilliseconds: UInt64 = 0, _ callback: @escaping () -> Void) {
        guard !closed else { return }
        self.callback = callback
        uv_timer_start(handle, { timer in
            guard let data = timer?.pointee.data else { return }
            Unmanaged<LoopTimer>.fromOpaque(data).takeUnretainedValue().callback?()
        }, milliseconds, repeatMilliseconds)
    }

    public func stop() {
        guard !closed else { return }
        uv_timer_stop(handle)
    }

    public func close() {
        guard !closed else { return }
        closed = true
        callback = nil
        uv_timer_stop(handle)
        uv_close(uvHandle(handle)) { h in
            guard let h, let data = h.pointee.data else { return }
            Unmanaged<LoopTimer>.fromOpaque(data).release()
            UnsafeMutablePointer<uv_timer_t>(OpaquePointer(h)).deallocate()
        }
    }

    /// One-shot convenience: runs `work` once after `milliseconds` and frees itself.
    public static func once(on loop: EventLoop, after milliseconds: UInt64, _ work: @escaping () -> Void) {
        let timer = LoopTimer(loop: loop)
        timer.start(after: milliseconds) {
            timer.close()
            work()
        }
    }
}
