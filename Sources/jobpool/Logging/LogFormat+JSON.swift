import Foundation
import JobCore
import Logging
import Synchronization

/// `--log-format json`: one JSON object per line on standard error, for container log
/// collectors: `{"time", "level", "label", "message", ...metadata}`.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let label: String
    private static let output = Mutex(())

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level
        let message = event.message
        var merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        if let error = event.error { merged["error"] = "\(error)" }
        var writer = JSONWriter()
        writer.object { fields in
            fields.member("time") { $0.string(Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))) }
            fields.member("level") { $0.string(level.rawValue) }
            fields.member("label") { $0.string(label) }
            fields.member("message") { $0.string(message.description) }
            for key in merged.keys.sorted() where !["time", "level", "label", "message"].contains(key) {
                fields.member(key) { $0.string("\(merged[key]!)") }
            }
        }
        var line = writer.bytes
        line.append(UInt8(ascii: "\n"))
        Self.output.withLock { _ in FileHandle.standardError.write(Data(line)) }
    }
}
