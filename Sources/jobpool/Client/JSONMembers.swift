/// Finds where the values of a JSON document lie, byte for byte, without decoding them: so
/// that `list --all --json` prints each job exactly as the server wrote it.
///
/// ```swift
/// JSONMembers.elements(of: "jobs", in: Array(#"{"jobs":[{"id":1},{"id":2}]}"#.utf8))
/// // [5..<13, 14..<22]: {"id":1} and {"id":2}
/// ```
enum JSONMembers {
    /// The ranges of the elements of the array that is the top-level object's member `name`;
    /// nil if the document is not such an object.
    static func elements(of name: String, in bytes: [UInt8]) -> [Range<Int>]? {
        var scanner = Scanner(bytes: bytes)
        guard scanner.consume(UInt8(ascii: "{")) else { return nil }
        while !scanner.consume(UInt8(ascii: "}")) {
            guard let key = scanner.value(), scanner.consume(UInt8(ascii: ":")) else { return nil }
            if bytes[key] == Array("\"\(name)\"".utf8)[...] { return scanner.arrayElements() }
            guard scanner.value() != nil else { return nil }
            _ = scanner.consume(UInt8(ascii: ","))
        }
        return nil
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        /// Skips white space, then takes `byte` if it comes next.
        mutating func consume(_ byte: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// The elements of the array that comes next.
        mutating func arrayElements() -> [Range<Int>]? {
            guard consume(UInt8(ascii: "[")) else { return nil }
            var elements: [Range<Int>] = []
            while !consume(UInt8(ascii: "]")) {
                guard let element = value() else { return nil }
                elements.append(element)
                _ = consume(UInt8(ascii: ","))
            }
            return elements
        }

        /// The range of the value that comes next: a string; an object or array, to its matching
        /// bracket; or a number or literal, to the next delimiter. It is not otherwise checked:
        /// the document is the server's, and was checked there.
        mutating func value() -> Range<Int>? {
            skipSpace()
            let start = index
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case Self.quote:
                skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                repeat {
                    let byte = bytes[index]
                    if byte == Self.quote { skipString(); continue }
                    index += 1
                    if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
                    if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { depth -= 1 }
                } while depth > 0 && index < bytes.count
                guard depth == 0 else { return nil }
            default:
                while index < bytes.count, !Self.delimiters.contains(bytes[index]) { index += 1 }
            }
            return start < index && index <= bytes.count ? start..<index : nil
        }

        private mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// Moves past the string that starts at `index`, escapes included.
        private mutating func skipString() {
            index += 1
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\\") { index += 1 } else if byte == Self.quote { return }
            }
        }

        private static let quote = UInt8(ascii: "\"")
        private static let delimiters: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ","), UInt8(ascii: ":"),
                                                     UInt8(ascii: "}"), UInt8(ascii: "]")]
    }
}
