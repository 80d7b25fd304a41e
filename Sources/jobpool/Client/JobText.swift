import Foundation

/// A job as a short text for a terminal: one line with its ID, kind and state, then its
/// result or error, if any.
///
/// ```text
/// 0b6c3f0e-3a8e-4c4b-9d0e-2f8c7a1b5d11  write_code  succeeded
///   result: {"lines":7,"name":"alex"}
/// ```
enum JobText {
    static func describe(_ job: [String: Any]) -> String {
        var lines = [summary(job)] + outcome(job).map { "  " + $0 }
        if job["status"] as? String == "scheduled" {
            if let last = job["last_error"] as? [String: Any] { lines.append("  last error: \(problem(last))") }
            if let next = job["next_attempt_at"] as? String { lines.append("  next attempt at: \(next)") }
        }
        // Returned once, in the submit reply, when the server generated it.
        if let secret = (job["webhook"] as? [String: Any])?["secret"] as? String {
            lines.append("  webhook secret: \(secret)")
        }
        return lines.joined(separator: "\n")
    }

    /// `result: ...` or `error: code: message` for a finished job; empty before.
    static func outcome(_ job: [String: Any]) -> [String] {
        if let result = job["result"], !(result is NSNull) { return ["result: \(compact(result))"] }
        if let error = job["error"] as? [String: Any] { return ["error: \(problem(error))"] }
        return []
    }

    /// `ID  kind  status`.
    static func summary(_ job: [String: Any]) -> String {
        [job["id"], job["kind"], job["status"]].map { ($0 as? String) ?? "?" }.joined(separator: "  ")
    }

    /// Jobs as a table with a header, columns aligned.
    static func table(_ jobs: [[String: Any]]) -> String {
        let header = ["ID", "KIND", "STATUS", "CREATED"]
        let rows = jobs.map { job in
            [job["id"], job["kind"], job["status"], job["created_at"]].map { ($0 as? String) ?? "" }
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// `code: message`.
    private static func problem(_ error: [String: Any]) -> String {
        "\(error["code"] as? String ?? "?"): \(error["message"] as? String ?? "")"
    }

    private static func compact(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value,
                                                     options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }
}
