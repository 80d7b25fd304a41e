import Foundation
import Synchronization

/// The time of a log line, `2026-12-04T11:26:48Z`, made once per second rather than per line:
/// at tens of thousands of access-log lines a second, formatting a date each time is a cost.
enum LogTimestamp {
    private static let cache = Mutex((second: Int.min, text: ""))

    static func now() -> String {
        let date = Date()
        let second = Int(date.timeIntervalSince1970.rounded(.down))
        return cache.withLock { cache in
            if cache.second != second {
                cache = (second, date.formatted(Date.ISO8601FormatStyle()))
            }
            return cache.text
        }
    }
}
