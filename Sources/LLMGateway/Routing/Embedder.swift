import Foundation

/// The gateway's built-in embedder: a hashed bag of words and character trigrams, L2-normalized
/// (256 dimensions). Cheap and local; good enough to find the nearest labelled example or a
/// known prompt-injection phrasing. A configured `/v1/embeddings` model can replace it.
enum Embedder {
    static let dimensions = 256

    static func embed(_ text: String) -> [Float] {
        var vector = [Float](repeating: 0, count: dimensions)
        let lowered = text.lowercased()
        let words = lowered.split { !$0.isLetter && !$0.isNumber }
        for word in words {
            add(word.utf8, weight: 1, to: &vector)
            let scalars = Array(word.utf8)
            if scalars.count >= 3 {
                for start in 0...(scalars.count - 3) { add(scalars[start..<(start + 3)], weight: 0.5, to: &vector) }
            }
        }
        for (first, second) in zip(words, words.dropFirst()) {
            add(Array(first.utf8) + [0x20] + Array(second.utf8), weight: 0.75, to: &vector)
        }
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? vector.map { $0 / norm } : vector
    }

    private static func add<Bytes: Sequence>(_ bytes: Bytes, weight: Float, to vector: inout [Float]) where Bytes.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let sign: Float = hash & (1 << 63) == 0 ? 1 : -1
        vector[Int(hash % UInt64(dimensions))] += sign * weight
    }

    /// The largest cosine between unit vector `vector` and the unit vectors laid end to end in
    /// `vectors` (each `dimensions` long): a dot product each, eight lanes at a time (the
    /// compiler keeps a float sum's order, so it would not vectorize the plain loop).
    static func nearest(_ vector: [Float], among vectors: [Float]) -> Float {
        guard vector.count == dimensions else { return 0 }
        var best: Float = 0
        vector.withUnsafeBufferPointer { query in
            vectors.withUnsafeBufferPointer { all in
                guard let queryBase = query.baseAddress, let allBase = all.baseAddress else { return }
                let lanes = dimensions / 8
                let queryLanes = UnsafeRawPointer(queryBase)
                var start = 0
                while start + dimensions <= all.count {
                    let row = UnsafeRawPointer(allBase + start)
                    var sum = SIMD8<Float>()
                    for lane in 0..<lanes {
                        let offset = lane * MemoryLayout<SIMD8<Float>>.size
                        sum += queryLanes.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                            * row.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                    }
                    best = max(best, sum.sum())
                    start += dimensions
                }
            }
        }
        return best
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return 0 }
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for index in a.indices { dot += a[index] * b[index]; na += a[index] * a[index]; nb += b[index] * b[index] }
        return na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : 0
    }
}
