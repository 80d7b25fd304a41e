import Foundation
import Glibc
import JobCore

extension JSONWriter {
    /// Writes an RFC 3339 UTC timestamp with microseconds, e.g. `"2026-11-29T21:04:05.123456Z"`.
    /// Formatted by hand with `gmtime_r`: Foundation's date formatters are slow on the hot path.
    mutating func timestamp(_ date: Date) {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = time_t(totalMicros.floorDivided(by: 1_000_000))
        let micros = Int(totalMicros - Int64(seconds) * 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var text = [UInt8](repeating: 0, count: 29)
        func put(_ value: Int, width: Int, at offset: Int) {
            var remaining = value
            for position in stride(from: offset + width - 1, through: offset, by: -1) {
                text[position] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, width: 4, at: 1)
        put(Int(parts.tm_mon) + 1, width: 2, at: 6)
        put(Int(parts.tm_mday), width: 2, at: 9)
        put(Int(parts.tm_hour), width: 2, at: 12)
        put(Int(parts.tm_min), width: 2, at: 15)
        put(Int(parts.tm_sec), width: 2, at: 18)
        put(micros, width: 6, at: 21)
        for (offset, byte) in [(0, "\""), (5, "-"), (8, "-"), (11, "T"), (14, ":"), (17, ":"), (20, "."), (27, "Z"), (28, "\"")] {
            text[offset] = UInt8(ascii: Unicode.Scalar(byte)!)
        }
        rawBytes(text)
    }

    mutating func optionalTimestamp(_ date: Date?) {
        if let date { timestamp(date) } else { null() }
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
