import Foundation
import Logging

public enum PortlessLogging {
    /// Logs go to stderr; `PORTLESS_LOG_LEVEL` (trace…critical) sets the level, info by default.
    public static func bootstrap() {
        let level = ProcessInfo.processInfo.environment["PORTLESS_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

extension String {
    /// A string from a NUL-terminated C buffer.
    public init(nulTerminated buffer: [CChar]) {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
