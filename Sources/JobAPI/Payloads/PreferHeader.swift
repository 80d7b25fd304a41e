import Foundation

/// The `wait` preference of an RFC 7240 `Prefer` header, e.g. `Prefer: respond-async, wait=10`.
/// Preferences are hints: one that cannot be read is ignored, as the RFC asks.
enum PreferHeader {
    /// The requested wait in whole seconds, capped at `limit`, or `nil` if none was asked.
    static func wait(in header: String?, limit: Int) -> Int? {
        guard let header else { return nil }
        for preference in header.split(separator: ",") {
            // The preference itself, before its parameters; `;` alone is a preference with no
            // name (splitting it on `;` gives no part at all).
            let parts = preference.prefix { $0 != ";" }.split(separator: "=", maxSplits: 1)
            guard parts.count == 2,
                  parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "wait" else { continue }
            let value = parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if let seconds = Int(value), seconds >= 0 { return min(seconds, limit) }
        }
        return nil
    }
}
