/// Writes JSON text into a byte buffer.
///
/// Replies are written straight from the service's own types rather than through `Codable`:
/// Foundation's `JSONEncoder` cost more than the rest of a `GET /v1/jobs/{id}` together
/// (measured in `bench/`). Object keys of ``JSONValue``s are written sorted, so the same value
/// always gives the same bytes.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []

    // A job renders to about 600 bytes: one allocation, no regrowth.
    public init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func null() { raw("null") }

    public mutating func bool(_ value: Bool) { value ? raw("true") : raw("false") }

    public mutating func integer(_ value: Int) { bytes.append(contentsOf: String(value).utf8) }

    public mutating func number(_ value: Double) {
        // JSON has no NaN or infinity; the parser never produces them, so this is defensive.
        guard value.isFinite else { return null() }
        if value == value.rounded(), abs(value) < 1e15 { return integer(Int(value)) }
        bytes.append(contentsOf: "\(value)".utf8)
    }

    public mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in string(utf8: utf8) }
    }

    /// Writes UTF-8 bytes as a JSON string, escaping what JSON requires.
    public mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        var runStart = 0
        for (index, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            // Copy the plain run before this byte in one go, then its escape.
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            runStart = index + 1
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            default:
                raw("\\u00")
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends bytes that are already valid JSON (a cached rendering, say).
    public mutating func rawBytes(_ json: [UInt8]) {
        bytes.append(contentsOf: json)
    }

    public mutating func optionalString(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .integer(let whole): integer(whole)
        case .number(let real): number(real)
        case .string(let text): string(text)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                self.value(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            object { writer in
                for key in members.keys.sorted() { writer.member(key) { $0.value(members[key]!) } }
            }
        }
    }

    /// Writes `{...}`; `body` writes the members with ``member(_:_:)``.
    public mutating func object(_ body: (inout ObjectWriter) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        var members = ObjectWriter(writer: self)
        bytes = []
        body(&members)
        self = members.writer
        bytes.append(UInt8(ascii: "}"))
    }

    /// Writes `[...]`, one element per item of `items`.
    public mutating func array<S: Sequence>(_ items: S, _ element: (inout JSONWriter, S.Element) -> Void) {
        bytes.append(UInt8(ascii: "["))
        var first = true
        for item in items {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            element(&self, item)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// Writes the members of one object, adding the commas.
    public struct ObjectWriter {
        fileprivate var writer: JSONWriter
        private var isFirst = true

        fileprivate init(writer: JSONWriter) { self.writer = writer }

        public mutating func member(_ key: String, _ value: (inout JSONWriter) -> Void) {
            if !isFirst { writer.bytes.append(UInt8(ascii: ",")) }
            isFirst = false
            writer.string(key)
            writer.bytes.append(UInt8(ascii: ":"))
            value(&writer)
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
