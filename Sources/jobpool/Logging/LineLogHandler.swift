import Logging

/// The log handler for both `--log-format`s: metadata handling here, the line's shape in
/// ``LogFormat``, and every line written through ``LogOutput``, so that logging never costs
/// the caller a system call.
struct LineLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    let format: LogFormat

    init(label: String, level: Logger.Level, format: LogFormat) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if let error = event.error { merged["error"] = "\(error)" }
        let line = switch format {
        case .text: LogFormat.textLine(for: event, label: label, metadata: merged)
        case .json: LogFormat.jsonLine(for: event, label: label, metadata: merged)
        }
        LogOutput.standardError.write(line)
    }
}

/// How a log line looks: `text` (swift-log's `StreamLogHandler` format) or `json`.
enum LogFormat: String {
    case text, json
}
