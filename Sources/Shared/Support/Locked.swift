import Foundation

/// A value behind a lock, for state shared between threads outside any event loop.
public final class Locked<Value>: @unchecked Sendable {
    // safe: every access to `value` happens inside `lock`.
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    public var current: Value { withLock { $0 } }
}
