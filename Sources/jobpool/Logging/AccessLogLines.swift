import JobAPI
import JobCore

extension LogFormat {
    /// Access-log lines for a batch of requests, in this format, written to standard error
    /// with one append. Byte for byte what ``LineLogHandler`` would write for
    /// `logger.info("request", metadata: [...])` from the `JobAPI` source, without building a
    /// metadata dictionary per request.
    func writeAccessLines(_ entries: [AccessLogEntry], label: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * 160)
        for entry in entries {
            switch self {
            case .text: Self.appendTextLine(entry, label: label, to: &bytes)
            case .json: Self.appendJSONLine(entry, label: label, to: &bytes)
            }
        }
        LogOutput.standardError.write(bytes)
    }

    private static func appendTextLine(_ entry: AccessLogEntry, label: String, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: LogTimestamp.text(for: entry.time).utf8)
        bytes.append(contentsOf: " info \(label): duration_ms=".utf8)
        appendMilliseconds(entry.elapsed, to: &bytes)
        bytes.append(contentsOf: " method=\(entry.method) request.id=\(entry.requestID) route=\(entry.route) status=\(entry.status) [JobAPI] request\n".utf8)
    }

    private static func appendJSONLine(_ entry: AccessLogEntry, label: String, to bytes: inout [UInt8]) {
        var writer = JSONWriter()
        writer.object { fields in
            fields.member("time") { $0.string(LogTimestamp.textWithMilliseconds(for: entry.time)) }
            fields.member("level") { $0.string("info") }
            fields.member("label") { $0.string(label) }
            fields.member("message") { $0.string("request") }
            fields.member("duration_ms") { $0.rawBytes(Array(milliseconds(entry.elapsed).utf8)) }
            fields.member("method") { $0.string(entry.method) }
            fields.member("request.id") { $0.string(entry.requestID) }
            fields.member("route") { $0.string(entry.route) }
            fields.member("status") { $0.integer(entry.status) }
        }
        bytes.append(contentsOf: writer.bytes)
        bytes.append(UInt8(ascii: "\n"))
    }

    /// `1.234`: milliseconds with three decimals, from whole microseconds, without `Double`'s
    /// description.
    private static func milliseconds(_ duration: Duration) -> String {
        let micros = max(0, duration.clampedMicroseconds)
        let fraction = String(micros % 1000)
        return "\(micros / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    private static func appendMilliseconds(_ duration: Duration, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: milliseconds(duration).utf8)
    }
}
