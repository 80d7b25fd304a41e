/// A value sent as a query parameter. Every parameter travels in PostgreSQL's text form, and
/// the server reads it as the type the statement gives it (write `$1::bigint` where the
/// statement alone does not say), so one small protocol covers every type jobpool stores.
///
/// ```swift
/// try connection.execute("UPDATE jobs SET attempt = $1 WHERE id = $2", [2, id.description])
/// ```
public protocol PostgresBindable: Sendable {
    /// The value in PostgreSQL's text input form.
    var postgresText: String { get }
}

extension String: PostgresBindable {
    public var postgresText: String { self }
}

extension Int: PostgresBindable {
    public var postgresText: String { String(self) }
}

extension Int64: PostgresBindable {
    public var postgresText: String { String(self) }
}

extension Bool: PostgresBindable {
    public var postgresText: String { self ? "true" : "false" }
}

extension Double: PostgresBindable {
    /// Swift's shortest round-tripping form; PostgreSQL reads `inf` and `nan` as well.
    public var postgresText: String { String(self) }
}

/// Bytes for a `bytea` parameter, sent in the hex form `\x0a1b…`.
public struct PostgresBytes: PostgresBindable, Hashable {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var postgresText: String {
        var text = [UInt8]()
        text.reserveCapacity(2 + bytes.count * 2)
        text += [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        for byte in bytes {
            text.append(Self.hexDigits[Int(byte >> 4)])
            text.append(Self.hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Decodes the hex form PostgreSQL sends a `bytea` in (`bytea_output = hex`, the default).
    static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// A one-dimensional array parameter (`$1::uuid[]`, `$1::text[]`), each element quoted; nil
/// elements are SQL NULL.
public struct PostgresArray: PostgresBindable, Hashable {
    public var elements: [String?]

    public init(_ elements: [String?]) { self.elements = elements }

    public init(_ elements: [String]) { self.elements = elements }

    /// `{"a","b\"c",NULL}`: each element in double quotes, `\` and `"` escaped with a
    /// backslash. Written byte by byte: a batch of finishes binds a dozen arrays of hundreds
    /// of elements, and Foundation's `replacingOccurrences` cost more than the rest of it.
    public var postgresText: String {
        var text: [UInt8] = [UInt8(ascii: "{")]
        text.reserveCapacity(elements.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (index, element) in elements.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ",")) }
            guard let element else {
                text += "NULL".utf8
                continue
            }
            text.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { text.append(UInt8(ascii: "\\")) }
                text.append(byte)
            }
            text.append(UInt8(ascii: "\""))
        }
        text.append(UInt8(ascii: "}"))
        return String(decoding: text, as: UTF8.self)
    }
}
