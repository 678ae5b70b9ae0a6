import Foundation

/// A value bound to, or read from, either backend's SQL. Each backend stores it in its own
/// native type: dates as GRDB's text in SQLite and `timestamptz` in PostgreSQL, booleans as
/// 0/1 and `boolean`.
enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case boolean(Bool)
    case date(Date)
}

/// What may be bound as an argument of a query.
protocol SQLArgument {
    var sqlValue: SQLValue { get }
}

extension String: SQLArgument { var sqlValue: SQLValue { .text(self) } }
extension Int: SQLArgument { var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLArgument { var sqlValue: SQLValue { .integer(self) } }
extension Double: SQLArgument { var sqlValue: SQLValue { .real(self) } }
extension Bool: SQLArgument { var sqlValue: SQLValue { .boolean(self) } }
extension Date: SQLArgument { var sqlValue: SQLValue { .date(self) } }
extension SQLValue: SQLArgument { var sqlValue: SQLValue { self } }
extension Optional: SQLArgument where Wrapped: SQLArgument {
    var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// A column held a value of another type than the one asked for.
struct SQLDecodingError: Error, CustomStringConvertible {
    let column: String
    let expected: String
    let found: SQLValue
    var description: String { "column '\(column)': expected \(expected), found \(found)" }
}

extension SQLValue {
    var isNull: Bool { if case .null = self { true } else { false } }

    func string(_ column: String) throws -> String {
        if case .text(let value) = self { return value }
        throw SQLDecodingError(column: column, expected: "text", found: self)
    }

    func int64(_ column: String) throws -> Int64 {
        switch self {
        case .integer(let value): return value
        case .boolean(let value): return value ? 1 : 0
        case .real(let value) where value.rounded() == value && abs(value) < 9.2e18: return Int64(value)
        default: throw SQLDecodingError(column: column, expected: "integer", found: self)
        }
    }

    func double(_ column: String) throws -> Double {
        switch self {
        case .real(let value): return value
        case .integer(let value): return Double(value)
        case .text(let value) where Double(value) != nil: return Double(value) ?? 0  // PostgreSQL numeric
        default: throw SQLDecodingError(column: column, expected: "real", found: self)
        }
    }

    func bool(_ column: String) throws -> Bool {
        switch self {
        case .boolean(let value): return value
        case .integer(let value): return value != 0
        default: throw SQLDecodingError(column: column, expected: "boolean", found: self)
        }
    }

    func date(_ column: String) throws -> Date {
        switch self {
        case .date(let value): return value
        case .text(let value):
            if let date = SQLiteDate.parse(value) { return date }
        case .real(let value): return Date(timeIntervalSince1970: value)
        case .integer(let value): return Date(timeIntervalSince1970: TimeInterval(value))
        default: break
        }
        throw SQLDecodingError(column: column, expected: "date", found: self)
    }
}

/// GRDB's text form of a date in SQLite, "yyyy-MM-dd HH:mm:ss.SSS" in UTC (seconds and their
/// fraction optional; a "T" between date and time accepted).
enum SQLiteDate {
    static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 16, bytes[4] == 45, bytes[7] == 45, bytes[10] == 32 || bytes[10] == 84, bytes[13] == 58,
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16) else { return nil }
        var seconds = 0.0
        if bytes.count > 16 {
            guard bytes[16] == 58, let whole = number(17..<19) else { return nil }
            seconds = Double(whole)
            if bytes.count > 19 {
                guard bytes[19] == 46, bytes.count > 20 else { return nil }
                var fraction = 0.0, scale = 0.1
                for byte in bytes[20...] {
                    guard (48...57).contains(byte) else { return nil }
                    fraction += Double(byte - 48) * scale
                    scale /= 10
                }
                seconds += fraction
            }
        }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60 else { return nil }
        let minuteStart = Double(daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60)
        // Milliseconds as GRDB wrote them, without the binary fraction's drift.
        return Date(timeIntervalSince1970: ((minuteStart + seconds) * 1000).rounded() / 1000)
    }

    /// The text GRDB writes, at the nearest millisecond (GRDB truncated; a date that is a whole
    /// millisecond, as audit times are, reads back exactly either way).
    static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (seconds, millisecond) = floorDivision(milliseconds, 1000)
        let (days, secondOfDay) = floorDivision(seconds, 86_400)
        let (year, month, day) = civilFromDays(Int(days))
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millisecondText = millisecond < 10 ? "00\(millisecond)" : millisecond < 100 ? "0\(millisecond)" : "\(millisecond)"
        let yearText = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
        return "\(yearText)-\(two(Int64(month)))-\(two(Int64(day))) \(two(secondOfDay / 3600)):\(two(secondOfDay % 3600 / 60)):\(two(secondOfDay % 60)).\(millisecondText)"
    }

    private static func floorDivision(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let quotient = a >= 0 ? a / b : (a - b + 1) / b
        return (quotient, a - quotient * b)
    }

    /// The inverse of `daysFromCivil`.
    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
