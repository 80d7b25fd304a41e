import ArgumentParser

/// Durations as `jobpool serve` takes them: `90s`, `30m`, `12h`, `7d`.
extension Serve {
    /// `90s`, `30m`, `12h`, `7d`, or nil if `text` is not such a duration.
    static func parseDuration(_ text: String) -> Duration? {
        guard let unit = text.last, let value = Double(text.dropLast()), value.isFinite, value >= 0 else { return nil }
        let secondsPerUnit: Double
        switch unit {
        case "s": secondsPerUnit = 1
        case "m": secondsPerUnit = 60
        case "h": secondsPerUnit = 3600
        case "d": secondsPerUnit = 86_400
        default: return nil
        }
        // Checked before converting: Int64(Double) traps past Int64.max.
        let milliseconds = value * secondsPerUnit * 1000
        guard milliseconds < 9e15 else { return nil }
        return .milliseconds(Int64(milliseconds))
    }

    /// A duration flag's value, refused with a message unless it lies in `range`.
    static func duration(_ text: String, flag: String, in range: ClosedRange<Duration>) throws -> Duration {
        guard let duration = parseDuration(text), range.contains(duration) else {
            throw ValidationError("\(flag): '\(text.prefix(40))' is not a duration from \(describe(range.lowerBound)) to \(describe(range.upperBound)), written like 7d, 12h, 30m or 90s.")
        }
        return duration
    }

    private static func describe(_ duration: Duration) -> String {
        let seconds = Int(duration.components.seconds)
        if seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        return "\(seconds)s"
    }
}
