import CLibPQ
import Foundation

/// A libpq connection string (`postgres://user:secret@host/db`, `postgresql://…`, or
/// `host=… password=…`), kept whole for connecting and shown only with its password replaced.
///
/// Logs and errors must never show the password, so everything the Postgres target says about
/// a connection goes through ``scrub(_:)``: it masks the `user:password@` part of any URI, every
/// `password=` (a URI's query parameter or a keyword/value pair, quoted or not), and any
/// literal copy of the password libpq parsed out of the string.
///
/// ```swift
/// let target = PostgresConnectionString("postgres://jobpool:s3cret@db/jobs")
/// print(target.redacted) // postgres://jobpool:***@db/jobs
/// ```
public struct PostgresConnectionString: Sendable, Hashable, CustomStringConvertible {
    /// The string as given, password included: only for libpq.
    public let text: String
    /// The password libpq finds in ``text``, if any; used to scrub messages.
    private let password: String?

    public init(_ text: String) {
        self.text = text
        password = Self.parsedPassword(text)
    }

    /// True for the URI forms that name PostgreSQL: `postgres://` and `postgresql://`.
    public static func isPostgresURI(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// The string with its password masked: what logs and messages show.
    public var redacted: String { scrub(text) }

    public var description: String { redacted }

    /// `message` with any password of this (or any other) connection string masked.
    public func scrub(_ message: String) -> String {
        var scrubbed = Self.redact(message)
        // A password short enough to appear by chance in ordinary words is left to the
        // patterns above; a real one is long.
        if let password, password.count >= 4 {
            scrubbed = scrubbed.replacingOccurrences(of: password, with: Self.mask)
        }
        return scrubbed
    }

    static let mask = "***"

    /// Masks the password in every URI's user information and every `password=` value found in
    /// `text`, whatever connection string it came from.
    public static func redact(_ text: String) -> String {
        redactKeywordPasswords(redactURIPasswords(text))
    }

    /// `scheme://user:password@host` → `scheme://user:***@host`, for each `://` in `text`.
    private static func redactURIPasswords(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let separator = rest.range(of: "://") {
            result += rest[..<separator.upperBound]
            rest = rest[separator.upperBound...]
            // The authority ends at the path, the query, the fragment, or white space.
            let authorityEnd = rest.firstIndex { "/?#".contains($0) || $0.isWhitespace } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                result += authority[...colon] + mask + authority[at...]
                rest = rest[authorityEnd...]
            }
        }
        return result + rest
    }

    /// `password=secret`, `password = 'it''s'` and `?password=secret&…` → `password=***`.
    private static func redactKeywordPasswords(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let keyword = rest.range(of: "password", options: .caseInsensitive) {
            result += rest[..<keyword.upperBound]
            rest = rest[keyword.upperBound...]
            var cursor = rest.startIndex
            while cursor < rest.endIndex, rest[cursor] == " " { cursor = rest.index(after: cursor) }
            guard cursor < rest.endIndex, rest[cursor] == "=" else { continue }
            cursor = rest.index(after: cursor)
            while cursor < rest.endIndex, rest[cursor] == " " { cursor = rest.index(after: cursor) }
            result += rest[rest.startIndex..<cursor] + mask
            rest = rest[cursor...]
            rest = rest[valueEnd(in: rest)...]
        }
        return result + rest
    }

    /// Where a keyword's value starting at `text.startIndex` ends: past the closing quote of a
    /// quoted value (`\'` and `''` stay inside), else at white space, `&` or `#`.
    private static func valueEnd(in text: Substring) -> Substring.Index {
        guard text.first == "'" else {
            return text.firstIndex { $0.isWhitespace || $0 == "&" || $0 == "#" } ?? text.endIndex
        }
        var cursor = text.index(after: text.startIndex)
        while cursor < text.endIndex {
            let character = text[cursor]
            let next = text.index(after: cursor)
            if character == "\\", next < text.endIndex {
                cursor = text.index(after: next)
            } else if character == "'" {
                guard next < text.endIndex, text[next] == "'" else { return next }
                cursor = text.index(after: next)
            } else {
                cursor = next
            }
        }
        return text.endIndex
    }

    /// The password as libpq reads it from `text` (percent-decoding a URI's), if it has one.
    private static func parsedPassword(_ text: String) -> String? {
        guard let options = PQconninfoParse(text, nil) else { return nil }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "password", let value = option.pointee.val {
                return String(cString: value)
            }
            option += 1
        }
        return nil
    }
}
