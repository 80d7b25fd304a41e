import Foundation
import JobCore
import Logging

extension LogFormat {
    /// `--log-format json`: one JSON object per line, for container log collectors:
    /// `{"time", "level", "label", "message", ...metadata}`. Metadata given as numbers or
    /// booleans (`.stringConvertible(200)`) stays a JSON number or boolean.
    static func jsonLine(for event: LogEvent, label: String, metadata: Logger.Metadata) -> [UInt8] {
        var writer = JSONWriter()
        writer.object { fields in
            fields.member("time") { $0.string(LogTimestamp.textWithMilliseconds()) }
            fields.member("level") { $0.string(event.level.rawValue) }
            fields.member("label") { $0.string(label) }
            fields.member("message") { $0.string(event.message.description) }
            for key in metadata.keys.sorted() where !["time", "level", "label", "message"].contains(key) {
                fields.member(key) { write(metadata[key]!, to: &$0) }
            }
        }
        var line = writer.bytes
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Numbers and booleans as themselves, lists and dictionaries as JSON, the rest as strings.
    private static func write(_ value: Logger.MetadataValue, to writer: inout JSONWriter) {
        switch value {
        case .stringConvertible(let number as Int): writer.integer(number)
        case .stringConvertible(let number as Double) where number.isFinite: writer.number(number)
        case .stringConvertible(let flag as Bool): writer.bool(flag)
        case .array(let items): writer.array(items) { writer, item in write(item, to: &writer) }
        case .dictionary(let members):
            writer.object { fields in
                for key in members.keys.sorted() { fields.member(key) { write(members[key]!, to: &$0) } }
            }
        default: writer.string("\(value)")
        }
    }
}
