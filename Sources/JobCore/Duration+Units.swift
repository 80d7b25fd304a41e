import Dispatch

/// The one place a `Duration` becomes a count of smaller units. Each conversion saturates at
/// the type's limits instead of trapping: `seconds × 1_000_000_000` overflows `Int64` past
/// about 292 years, and a flag such as `--retention 99999999d` must get an error from its
/// parser, never a crash from arithmetic.
extension Duration {
    /// Whole nanoseconds, saturating.
    public var clampedNanoseconds: Int64 { units(per: 1_000_000_000) }

    /// Whole microseconds, saturating.
    public var clampedMicroseconds: Int64 { units(per: 1_000_000) }

    /// Whole milliseconds, saturating.
    public var clampedMilliseconds: Int64 { units(per: 1_000) }

    /// The duration in seconds, as a floating-point number.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// For `DispatchSemaphore.wait(timeout:)` and the like; negative durations become zero.
    public var dispatchInterval: DispatchTimeInterval {
        .nanoseconds(Int(max(0, clampedNanoseconds)))
    }

    private func units(per second: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: second)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (sum, sumOverflow) = whole.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / second))
        return sumOverflow ? (seconds < 0 ? .min : .max) : sum
    }
}
