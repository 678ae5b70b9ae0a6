import Foundation

/// Small file helpers that give errors naming the file.
public enum Files {
    public static func read(_ path: String) throws -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw FileError.unreadable(path: path, reason: error.localizedDescription)
        }
    }

    public static func write(_ text: String, to path: String, privateFile: Bool = false) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            if privateFile { try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }
        } catch {
            throw FileError.unwritable(path: path, reason: error.localizedDescription)
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

    public static func createDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
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
