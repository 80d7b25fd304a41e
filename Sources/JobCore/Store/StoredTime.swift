import Foundation

/// How the durable stores keep times: whole microseconds since 1970 (UTC) in a 64-bit integer,
/// exact, ordered as integers, and the same in SQLite and PostgreSQL. A `Date` that round-trips
/// through them comes back identical.
public enum StoredTime {
    /// Clamped to what an `Int64` holds (about ±292,000 years), so that no date a client can
    /// send into a filter traps the conversion.
    public static func micros(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1_000_000).rounded()
        guard value.isFinite else { return value > 0 ? .max : .min }
        return value >= 9.2e18 ? .max : value <= -9.2e18 ? .min : Int64(value)
    }

    public static func date(_ micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }

    /// The first stored time at or after `date`: `created_at >= firstMicros(notBefore: d)` keeps
    /// exactly the stored jobs with `createdAt >= d`, as a comparison of `Date`s would, even when
    /// `d` falls between two microseconds.
    public static func firstMicros(notBefore date: Date) -> Int64 {
        let nearest = micros(date)
        return self.date(nearest) >= date || nearest == .max ? nearest : nearest + 1
    }
}
