import Glibc

/// The seed's simulated work: "writes code" by sleeping a random 1 to 5 seconds, then reports
/// `{"name": ..., "lines": N}` with N from 5 to 10.
///
/// Input: `{"name": string, "min_seconds"?: 0...3600, "max_seconds"?: 0...3600}`. The sleep is
/// interruptible, so a cancel stops a running job at once.
public struct WriteCode: JobKind {
    public let name = "write_code"
    private static let fields: Set<String> = ["name", "min_seconds", "max_seconds"]

    public init() {}

    public func makeWork(input: JSONValue) throws(InputError) -> JobWork {
        let reader = try InputReader(input)
        try reader.rejectUnknown(Self.fields)
        let author = try reader.requiredString("name", maxLength: 200)
        let givenMin = try reader.number("min_seconds", in: 0...3600)
        let givenMax = try reader.number("max_seconds", in: 0...3600)
        // Defaults 1 and 5, moved aside when only one bound is given, so that
        // `"max_seconds": 0` alone means "no sleep" rather than an error.
        let minSeconds = givenMin ?? min(1, givenMax ?? 5)
        let maxSeconds = givenMax ?? max(5, minSeconds)
        guard minSeconds <= maxSeconds else {
            throw InputError(pointer: reader.pointer("max_seconds"),
                             message: "'max_seconds' (\(maxSeconds)) must not be less than 'min_seconds' (\(minSeconds)).")
        }
        return { context throws(JobFailure) in
            // One draw serves both random choices. arc4random (glibc) needs no system call.
            var draw: UInt64 = 0
            withUnsafeMutableBytes(of: &draw) { arc4random_buf($0.baseAddress!, 8) }
            let fraction = Double(draw >> 11) / Double(1 << 53)
            let seconds = minSeconds + (maxSeconds - minSeconds) * fraction
            if seconds > 0 { try context.sleep(for: .milliseconds(Int64(seconds * 1000))) }
            let lines = 5 + Int(draw % 6) // low bits; the fraction used the high 53
            return .object(["name": .string(author), "lines": .integer(lines)])
        }
    }
}
