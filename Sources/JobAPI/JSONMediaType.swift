/// The request body types the API takes: JSON only.
///
/// A body with no `Content-Type` is read as JSON (older clients); a declared type must be
/// `application/json` or a `+json` type (`application/merge-patch+json`, say). Refusing every
/// other declared type is also what stops an HTML form on another site from posting jobs: a form
/// can only declare `application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain`.
///
/// Every POST passes through here, so the check reads the header's bytes once and allocates
/// nothing: with Foundation's trimming and lowercasing it cost a third of a submit's time on
/// the event loop (31,000 of 134,000 instructions, measured with callgrind).
enum JSONMediaType {
    /// What a 415 offers instead, in `Accept-Post`.
    static let accepted = "application/json"

    /// True if a body declared as `contentType` (parameters allowed) may be read as JSON.
    static func accepts(_ contentType: String) -> Bool {
        var contentType = contentType
        return contentType.withUTF8 { accepts(bytes: $0) }
    }

    private static func accepts(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // The essence is what comes before any parameter, without surrounding blanks.
        var end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
        var start = 0
        while start < end, isBlank(bytes[start]) { start += 1 }
        while end > start, isBlank(bytes[end - 1]) { end -= 1 }
        let essence = UnsafeBufferPointer(rebasing: bytes[start..<end])
        guard let slash = essence.firstIndex(of: UInt8(ascii: "/")), slash > 0, slash < essence.count - 1,
              !essence[(slash + 1)...].contains(UInt8(ascii: "/")) else { return false }
        let suffixStart = essence.count - 5 // where a "+json" subtype suffix would start
        return equalsIgnoringCase(essence[...], "application/json")
            || (suffixStart > slash && equalsIgnoringCase(essence[suffixStart...], "+json"))
    }

    private static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// ASCII case-insensitive equality with a lowercase literal.
    private static func equalsIgnoringCase(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return zip(bytes, UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)).allSatisfy { byte, expected in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 == expected : byte == expected
        }
    }

    /// A 415 problem for a body declared as `contentType`, or nil if it is acceptable.
    static func problem(contentType: String?, bodyLength: Int) -> Problem? {
        guard bodyLength > 0, let contentType, !accepts(contentType) else { return nil }
        return Problem("unsupported-media-type", title: "Unsupported media type", status: 415,
                       detail: "The request body is declared as '\(contentType.prefix(100))', but this API takes JSON only. Send the body with 'Content-Type: application/json' (with curl, use --json '{...}' instead of -d).",
                       headers: [("Accept-Post", accepted)])
    }
}
