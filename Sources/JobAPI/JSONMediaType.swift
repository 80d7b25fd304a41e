import Foundation

/// The request body types the API takes: JSON only.
///
/// A body with no `Content-Type` is read as JSON (older clients); a declared type must be
/// `application/json` or a `+json` type (`application/merge-patch+json`, say). Refusing every
/// other declared type is also what stops an HTML form on another site from posting jobs: a form
/// can only declare `application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain`.
enum JSONMediaType {
    /// What a 415 offers instead, in `Accept-Post`.
    static let accepted = "application/json"

    /// True if a body declared as `contentType` (parameters allowed) may be read as JSON.
    static func accepts(_ contentType: String) -> Bool {
        let essence = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
            .trimmingCharacters(in: .whitespaces).lowercased()
        let parts = essence.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return false }
        return essence == "application/json" || parts[1].hasSuffix("+json")
    }

    /// A 415 problem for a body declared as `contentType`, or nil if it is acceptable.
    static func problem(contentType: String?, bodyLength: Int) -> Problem? {
        guard bodyLength > 0, let contentType, !accepts(contentType) else { return nil }
        return Problem("unsupported-media-type", title: "Unsupported media type", status: 415,
                       detail: "The request body is declared as '\(contentType.prefix(100))', but this API takes JSON only. Send the body with 'Content-Type: application/json' (with curl, use --json '{...}' instead of -d).",
                       headers: [("Accept-Post", accepted)])
    }
}
