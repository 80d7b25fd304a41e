import Foundation

/// The parameters of a URL query string (`a=1&b=two`), percent-decoded, `+` read as a space.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ query: String?) {
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            // The first occurrence wins; repeats are ignored rather than merged.
            if values[name] == nil { values[name] = parts.count > 1 ? Self.decode(parts[1]) : "" }
        }
    }

    subscript(name: String) -> String? { values[name] }

    /// Refuses any parameter not in `known`: a misspelt filter (`?staus=failed`) would
    /// otherwise be ignored, and the client would take the unfiltered answer for a filtered one.
    func requireOnly(_ known: [String]) throws(Problem) {
        guard let unknown = values.keys.sorted().first(where: { !known.contains($0) }) else { return }
        throw Problem.invalidParameter(
            unknown, "'\(unknown.prefix(40))' is not a parameter here; use \(known.map { "'\($0)'" }.joined(separator: ", ")).")
    }

    /// An optional whole number in `range`; a present but bad value is a 400 naming it.
    func integer(_ name: String, in range: ClosedRange<Int>) throws(Problem) -> Int? {
        guard let text = values[name] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw Problem.invalidParameter(
                name, "'\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound); got '\(text.prefix(40))'.")
        }
        return value
    }

    private static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
