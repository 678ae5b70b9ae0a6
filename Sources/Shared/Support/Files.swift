import Foundation

/// Small file helpers that give errors naming the file.
public enum Files {
    public static func read(_ path: String) throws -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw FileError.unreadable(path: path, reason: error.localizedDescription)
        }
    }

    /// Writes atomically (a temporary file renamed over `path`). A private file (keys, tokens,
    /// credentials) is created readable by its owner only from the first byte: it is never, even
    /// for a moment, readable by anyone else.
    public static func write(_ text: String, to path: String, privateFile: Bool = false) throws {
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, privateFile ? 0o600 : 0o644)
        guard fd >= 0 else { throw FileError.unwritable(path: path, reason: String(cString: strerror(errno))) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw FileError.unwritable(path: path, reason: reason)
            }
            offset += n
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw FileError.unwritable(path: path, reason: reason)
        }
    }

    public static func readJSON<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        let text = try read(path)
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(T.self, from: Data(text.utf8))
        } catch {
            throw FileError.invalid(path: path, reason: "\(error)")
        }
    }

    public static func writeJSON<T: Encodable>(_ value: T, to path: String, privateFile: Bool = false) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        try write(String(decoding: data, as: UTF8.self), to: path, privateFile: privateFile)
    }

    /// Creates a state directory (and its parents), open to its owner only (0700).
    public static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw FileError.unwritable(path: path, reason: error.localizedDescription)
        }
    }
}

public enum FileError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .unwritable(let path, let reason): return "cannot write \(path): \(reason)"
        case .invalid(let path, let reason): return "\(path) is invalid: \(reason)"
        }
    }
}
