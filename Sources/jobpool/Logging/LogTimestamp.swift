import Foundation
import Synchronization

/// The time of a log line in UTC, `2026-12-04T11:26:48Z` or `2026-12-04T11:26:48.123Z`. The
/// date and time of day are formatted once per second rather than per line: at tens of
/// thousands of access-log lines a second, formatting a date each time is a cost.
enum LogTimestamp {
    /// The current second's `2026-12-04T11:26:48`.
    private static let cache = Mutex((second: Int.min, text: ""))

    static func text(for date: Date = Date()) -> String {
        let (prefix, _) = parts(of: date)
        return prefix + "Z"
    }

    static func textWithMilliseconds(for date: Date = Date()) -> String {
        let (prefix, milliseconds) = parts(of: date)
        let digits = String(milliseconds)
        return prefix + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    private static func parts(of date: Date) -> (prefix: String, milliseconds: Int) {
        let time = date.timeIntervalSince1970
        let second = Int(time.rounded(.down))
        let milliseconds = min(999, Int((time - Double(second)) * 1000))
        let prefix = cache.withLock { cache in
            if cache.second != second {
                let text = Date(timeIntervalSince1970: Double(second)).formatted(Date.ISO8601FormatStyle())
                cache = (second, String(text.dropLast())) // without its "Z"
            }
            return cache.text
        }
        return (prefix, milliseconds)
    }
}
