import Foundation

/// The waits between webhook attempts: attempt n+1 comes `delays[n-1]` (jittered) after attempt
/// n fails; when the list runs out the delivery is failed.
public struct RetrySchedule: Sendable, Equatable, CustomStringConvertible {
    public var delays: [Duration]

    /// About 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h: eight attempts over a day and a bit.
    public static let standard = RetrySchedule(delays: [
        .seconds(5), .seconds(300), .seconds(1800), .seconds(7200), .seconds(18000), .seconds(36000), .seconds(36000),
    ])

    public init(delays: [Duration]) { self.delays = delays }

    /// Parses a comma-separated list such as `5s,5m,30m,2h` (units ms, s, m, h).
    public init?(_ text: String) {
        var delays: [Duration] = []
        for item in text.split(separator: ",") {
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            let unitStart = trimmed.firstIndex { !$0.isNumber && $0 != "." } ?? trimmed.endIndex
            guard let value = Double(trimmed[..<unitStart]), value >= 0, value <= 7 * 86400 else { return nil }
            switch trimmed[unitStart...] {
            case "ms": delays.append(.milliseconds(Int64(value)))
            case "s", "": delays.append(.milliseconds(Int64(value * 1000)))
            case "m": delays.append(.milliseconds(Int64(value * 60_000)))
            case "h": delays.append(.milliseconds(Int64(value * 3_600_000)))
            default: return nil
            }
        }
        guard !delays.isEmpty, delays.count <= 50 else { return nil }
        self.delays = delays
    }

    /// The wait after `failedAttempts` attempts have failed, with ±20% jitter so that many
    /// failed deliveries do not retry in lockstep; `nil` when the schedule is used up.
    public func delay(afterFailedAttempts failedAttempts: Int, retryAfter: Duration? = nil) -> Duration? {
        guard failedAttempts >= 1, failedAttempts <= delays.count else { return nil }
        let base = delays[failedAttempts - 1]
        let jittered = base * Double.random(in: 0.8...1.2)
        // A receiver's Retry-After is honoured: never retry sooner than it asked (capped at a day).
        guard let retryAfter else { return jittered }
        return max(jittered, min(retryAfter, .seconds(86400)))
    }

    public var description: String {
        delays.map { delay in
            let milliseconds = delay.clampedMilliseconds
            if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
            if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
            if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
            return "\(milliseconds)ms"
        }.joined(separator: ",")
    }
}
