import Foundation
import GatewayKit
import Shared

/// A stream of server messages to one caller (a session's GET stream, a `subscriptions/listen`
/// stream). An empty message is written as a keepalive comment.
final class MessageStream: Sendable {
    let continuation: AsyncStream<Data>.Continuation
    init(_ continuation: AsyncStream<Data>.Continuation) { self.continuation = continuation }

    /// A stream with room for `buffer` messages: a caller that stops reading loses the oldest,
    /// never the gateway's memory.
    static func make(buffer: Int = 1_000) -> (AsyncStream<Data>, MessageStream) {
        let (stream, continuation) = AsyncStream<Data>.makeStream(bufferingPolicy: .bufferingNewest(buffer))
        return (stream, MessageStream(continuation))
    }
}

/// MCP's logging levels (RFC 5424 severities), least severe first.
enum LogLevel: String, CaseIterable, Sendable, Comparable {
    case debug, info, notice, warning, error, critical, alert, emergency

    private var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }

    /// Whether a message of `params.level` passes a caller's chosen `minimum` (all pass without one).
    static func passes(_ params: JSONValue, minimum: LogLevel?) -> Bool {
        guard let minimum else { return true }
        guard let level = params["level"]?.stringValue.flatMap(LogLevel.init(rawValue:)) else { return false }
        return level >= minimum
    }
}

/// One caller's session of the handshake revisions (2025-06-18, 2025-11-25).
struct Session {
    let id: String
    let caller: Caller
    let protocolVersion: String
    /// What the client declared at `initialize`: which server requests it can answer.
    let capabilities: JSONValue
    var logLevel: LogLevel?
    /// Open GET streams, oldest first; each message goes to the newest only.
    var streams: [(key: UUID, stream: MessageStream)] = []
    var fingerprints: [ListKind: Int] = [:]
    var lastUsed = ContinuousClock.now
    /// Resource URIs this session subscribed to (`resources/subscribe`).
    var subscriptions: Set<String> = []
}

/// The sessions the gateway holds, with their limits: a caller holds at most
/// `maxPerCaller` sessions (its least recently used session without a stream makes room for a
/// new one), and a session expires after `idleLimit` without a request — `idleLimitWithStream`
/// while it keeps a stream open.
struct SessionTable {
    static let maxPerCaller = 32
    static let idleLimit: Duration = .seconds(30 * 60)
    static let idleLimitWithStream: Duration = .seconds(12 * 3600)

    private(set) var sessions: [String: Session] = [:]

    /// A new session for `caller`, or an error when it already holds its limit of live streams.
    mutating func open(caller: Caller, version: String, capabilities: JSONValue) -> Result<Session, RPCError> {
        let mine = sessions.values.filter { $0.caller.identity == caller.identity }
        if mine.count >= Self.maxPerCaller {
            guard let oldest = mine.filter({ $0.streams.isEmpty }).min(by: { $0.lastUsed < $1.lastUsed }) else {
                return .failure(RPCError(code: JSONRPC.invalidRequest,
                    message: "identity '\(caller.identity)' already holds \(Self.maxPerCaller) sessions with open streams; end one (DELETE) first"))
            }
            sessions.removeValue(forKey: oldest.id)
        }
        let session = Session(id: UUID().uuidString, caller: caller, protocolVersion: version, capabilities: capabilities)
        sessions[session.id] = session
        return .success(session)
    }

    subscript(id: String) -> Session? {
        get { sessions[id] }
        set { sessions[id] = newValue }
    }

    /// The session, marked used now.
    mutating func touch(_ id: String) -> Session? {
        sessions[id]?.lastUsed = .now
        return sessions[id]
    }

    mutating func remove(_ id: String) -> Session? {
        guard let session = sessions.removeValue(forKey: id) else { return nil }
        for entry in session.streams { entry.stream.continuation.finish() }
        return session
    }

    /// Removes and returns the sessions past their idle limit.
    mutating func expire(now: ContinuousClock.Instant = .now) -> [Session] {
        let expired = sessions.values.filter { now - $0.lastUsed > ($0.streams.isEmpty ? Self.idleLimit : Self.idleLimitWithStream) }
        return expired.compactMap { remove($0.id) }
    }

    mutating func attach(_ stream: MessageStream, to id: String) -> UUID? {
        guard sessions[id] != nil else { return nil }
        let key = UUID()
        sessions[id]?.streams.append((key, stream))
        return key
    }

    mutating func detach(_ key: UUID, from id: String) {
        sessions[id]?.streams.removeAll { $0.key == key }
    }

    /// Sends `message` on the session's newest stream (MCP: each message on one stream only).
    @discardableResult
    func deliver(_ message: Data, to id: String) -> Bool {
        guard let stream = sessions[id]?.streams.last?.stream else { return false }
        stream.continuation.yield(message)
        return true
    }

    var all: Dictionary<String, Session>.Values { sessions.values }

    /// Sessions subscribed to `uri`.
    func subscribers(of uri: String) -> [Session] { sessions.values.filter { $0.subscriptions.contains(uri) } }

    /// Whether any session still subscribes to `uri`.
    func anySubscribes(to uri: String) -> Bool { sessions.values.contains { $0.subscriptions.contains(uri) } }

    /// The lowest log level any session asked for (what upstreams must send for all to be served).
    var lowestLogLevel: LogLevel? { sessions.values.compactMap(\.logLevel).min() }
}
