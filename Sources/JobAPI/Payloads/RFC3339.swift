import Foundation

/// Reads an RFC 3339 `date-time` (`2026-12-01T09:30:00Z`, `2026-12-01T10:30:00.25+01:00`).
///
/// Strict where Foundation's `ISO8601DateFormatter` is lenient: it accepted a year of `-001`
/// and an offset of `+99:99`, and building one per request was among the costlier parts of a
/// scheduled submit. The grammar is small (RFC 3339 §5.6), so it is checked byte by byte here,
/// with every field's range, and the instant computed with no formatter or calendar at all.
enum RFC3339 {
    /// The instant `text` names, or nil if it is not a valid RFC 3339 date-time.
    static func date(_ text: String) -> Date? {
        var reader = Reader(bytes: Array(text.utf8))
        guard reader.bytes.count <= 64,
              let year = reader.number(digits: 4), reader.skip("-"),
              let month = reader.number(digits: 2), (1...12).contains(month), reader.skip("-"),
              let day = reader.number(digits: 2), (1...daysIn(month: month, year: year)).contains(day),
              reader.skip("T") || reader.skip("t"),
              let hour = reader.number(digits: 2), hour <= 23, reader.skip(":"),
              let minute = reader.number(digits: 2), minute <= 59, reader.skip(":"),
              let second = reader.number(digits: 2), second <= 60 // 60: a leap second
        else { return nil }
        var fraction = 0.0
        if reader.skip(".") {
            var scale = 0.1, digits = 0
            while let digit = reader.digit() {
                fraction += Double(digit) * scale
                scale /= 10
                digits += 1
            }
            guard (1...9).contains(digits) else { return nil }
        }
        var offsetSeconds = 0
        if reader.skip("Z") || reader.skip("z") {
            offsetSeconds = 0
        } else {
            let sign: Int
            if reader.skip("+") { sign = 1 } else if reader.skip("-") { sign = -1 } else { return nil }
            guard let hours = reader.number(digits: 2), hours <= 23, reader.skip(":"),
                  let minutes = reader.number(digits: 2), minutes <= 59 else { return nil }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        }
        guard reader.atEnd else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's
    /// `days_from_civil`).
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index == bytes.count }

        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
            index += 1
            return true
        }

        mutating func digit() -> Int? {
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
            defer { index += 1 }
            return Int(bytes[index] - UInt8(ascii: "0"))
        }

        /// Exactly `digits` decimal digits.
        mutating func number(digits: Int) -> Int? {
            var value = 0
            for _ in 0..<digits {
                guard let digit = digit() else { return nil }
                value = value * 10 + digit
            }
            return value
        }
    }
}
