/// The sealed data frames a circuit endpoint has sent and the peer has not acknowledged yet,
/// kept back to back in one ring of memory so that a reroute can resend them as they were.
/// No allocation per frame. The ring starts small (an idle circuit costs little) and doubles
/// when it must, up to `limit`, which bounds what a circuit can have in flight.
public final class RetransmitBuffer {
    private struct Entry {
        let sequence: UInt64
        let offset: Int
        let length: Int
    }

    private var storage: UnsafeMutableRawBufferPointer
    public let limit: Int
    private var entries: [Entry] = []
    private var first = 0
    /// Bytes held, counting the unusable gap left at the end when a frame wraps to the start.
    public private(set) var usedBytes = 0
    private var tail = 0

    public init(capacity: Int, initialCapacity: Int = 64 * 1024) {
        limit = capacity
        storage = .allocate(byteCount: min(capacity, max(initialCapacity, 1)), alignment: 16)
    }

    deinit { storage.deallocate() }

    public var capacity: Int { storage.count }
    public var isEmpty: Bool { first == entries.count }
    public var count: Int { entries.count - first }
    public var oldestSequence: UInt64? { isEmpty ? nil : entries[first].sequence }

    /// Room for a frame of up to `length` bytes, or nil when the buffer is too full.
    public func reserve(_ length: Int) -> UnsafeMutableRawBufferPointer? {
        while placement(for: length) == nil && storage.count < limit { grow() }
        guard let offset = placement(for: length) else { return nil }
        return UnsafeMutableRawBufferPointer(rebasing: storage[offset..<offset + length])
    }

    /// Records the frame just written into the reserved space.
    public func commit(sequence: UInt64, length: Int) {
        guard let offset = placement(for: length) else { return }
        if offset == 0 && tail != 0 { usedBytes += storage.count - tail }  // the gap skipped at the end
        entries.append(Entry(sequence: sequence, offset: offset, length: length))
        usedBytes += length
        tail = offset + length
    }

    /// Drops every frame with a sequence below `sequence` (they were acknowledged).
    public func release(below sequence: UInt64) {
        while first < entries.count, entries[first].sequence < sequence {
            let entry = entries[first]
            first += 1
            let next = first < entries.count ? entries[first].offset : tail
            usedBytes -= next >= entry.offset ? next - entry.offset : storage.count - entry.offset + next
            if first == entries.count {
                entries.removeAll(keepingCapacity: true)
                first = 0
                usedBytes = 0
                tail = 0
            }
        }
        if first > 1024 && first * 2 > entries.count {
            entries.removeFirst(first)
            first = 0
        }
    }

    /// Every held frame, oldest first.
    public func forEach(_ body: (UInt64, UnsafeRawBufferPointer) -> Void) {
        for entry in entries[first...] {
            body(entry.sequence, UnsafeRawBufferPointer(rebasing: storage[entry.offset..<entry.offset + entry.length]))
        }
    }

    /// Doubles the ring (up to `limit`), laying the held frames out from the start, oldest first.
    private func grow() {
        let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: min(limit, storage.count * 2), alignment: 16)
        var offset = 0
        var moved: [Entry] = []
        for entry in entries[first...] {
            UnsafeMutableRawBufferPointer(rebasing: larger[offset..<offset + entry.length])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[entry.offset..<entry.offset + entry.length]))
            moved.append(Entry(sequence: entry.sequence, offset: offset, length: entry.length))
            offset += entry.length
        }
        storage.deallocate()
        storage = larger
        entries = moved
        first = 0
        tail = offset
        usedBytes = offset
    }

    /// Where a frame of `length` bytes would go: after the newest, or wrapped to the start.
    private func placement(for length: Int) -> Int? {
        guard length <= storage.count else { return nil }
        if isEmpty { return 0 }
        let head = entries[first].offset
        if tail >= head {
            if tail + length <= storage.count { return tail }
            return length < head ? 0 : nil
        }
        return tail + length < head ? tail : nil
    }
}
