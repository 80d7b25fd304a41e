import Foundation
import Testing
@testable import JobAPI

@Suite("RFC 3339 times")
struct RFC3339Tests {
    @Test("valid times read as Foundation reads them", arguments: [
        "2026-12-01T09:30:00Z", "2026-12-01t09:30:00z", "2026-12-01T10:30:00+01:00", "2026-12-01T04:00:00-05:30",
        "2024-02-29T23:59:59.123456Z", "1970-01-01T00:00:00Z", "1900-03-01T00:00:00Z", "9999-12-31T23:59:59Z",
    ])
    func valid(text: String) throws {
        let date = try #require(RFC3339.date(text))
        // Foundation's parser is the oracle for what it accepts.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        let expected = try #require(formatter.date(from: text.uppercased()))
        #expect(abs(date.timeIntervalSince(expected)) < 0.001)
    }

    @Test("a leap second reads as the second before it")
    func leapSecond() throws {
        #expect(RFC3339.date("2016-12-31T23:59:60Z") == RFC3339.date("2016-12-31T23:59:59Z"))
    }

    @Test("impossible or malformed times are refused", arguments: [
        "-001-01-01T00:00:00Z", "2026-12-01T09:30:00+99:99", "2026-12-01T09:30:00+24:00", "2026-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-12-01T09:60:00Z", "2026-12-01T09:30:61Z", "2026-12-01T09:30:00",
        "2026-12-01T09:30:00.1234567890Z", "2026-12-01T09:30:00Z ", "", "2026-12-01",
    ])
    func invalid(text: String) {
        #expect(RFC3339.date(text) == nil)
    }
}
