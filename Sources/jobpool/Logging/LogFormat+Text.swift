import Logging

extension LogFormat {
    /// `--log-format text` (the default): swift-log's `StreamLogHandler` line format,
    /// `TIME LEVEL LABEL: key=value ... [SOURCE] MESSAGE`.
    static func textLine(for event: LogEvent, label: String, metadata: Logger.Metadata) -> [UInt8] {
        var line = "\(LogTimestamp.text()) \(event.level) \(label):"
        for key in metadata.keys.sorted() { line += " \(key)=\(metadata[key]!)" }
        line += " [\(event.source)] \(event.message)\n"
        return Array(line.utf8)
    }
}
