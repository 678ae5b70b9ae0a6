import Foundation

/// The task running a request, cancellable from another thread until it says it is finished.
/// `UnsafeCurrentTask` may only be used while its task lives: `finished()` runs before the task
/// can end, and both take the same lock, so `cancel()` never reaches a task that has ended.
final class RunningTask: @unchecked Sendable {
    private let lock = NSLock()
    private var task: UnsafeCurrentTask?

    init() { task = withUnsafeCurrentTask { $0 } }

    func cancel() { lock.withLock { task?.cancel() } }

    func finished() { lock.withLock { task = nil } }
}
