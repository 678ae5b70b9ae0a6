import ArgumentParser
import Foundation
import Logging

public enum PortlessLogging {
    /// Logs go to stderr, as text or as one JSON object per line; `PORTLESS_LOG_LEVEL`
    /// (trace…critical) sets the level, info by default.
    public static func bootstrap(format: LogFormat = .text) {
        let level = ProcessInfo.processInfo.environment["PORTLESS_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

public enum LogFormat: String, CaseIterable, ExpressibleByArgument, Sendable {
    case text, json
}

/// `--log-format`, shared by every command that runs a process for long.
public struct LogOptions: ParsableArguments {
    @Option(help: "Log lines as 'text' or 'json' (one object per line on stderr). Default: $PORTLESS_LOG_FORMAT, else text.")
    public var logFormat: LogFormat?

    public init() {}

    public func validate() throws {
        if logFormat == nil, let configured = ProcessInfo.processInfo.environment["PORTLESS_LOG_FORMAT"], LogFormat(rawValue: configured) == nil {
            throw ValidationError("PORTLESS_LOG_FORMAT is '\(configured)'; expected one of: text, json")
        }
    }

    public var format: LogFormat {
        logFormat ?? ProcessInfo.processInfo.environment["PORTLESS_LOG_FORMAT"].flatMap(LogFormat.init(rawValue:)) ?? .text
    }

    public func bootstrap() { PortlessLogging.bootstrap(format: format) }
}

extension String {
    /// A string from a NUL-terminated C buffer.
    public init(nulTerminated buffer: [CChar]) {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
