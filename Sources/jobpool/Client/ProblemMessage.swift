import Foundation
import OutboundHTTP

/// An error answer as a person reads it on standard error: an RFC 9457 problem's `title` and
/// `detail`, then each field error under the name of what it points at.
///
/// ```text
/// Invalid request field (422): 'name' must be a string, not number.
///   /input/name: 'name' must be a string, not number.
/// ```
struct ProblemMessage {
    let text: String

    init(_ response: OutboundResponse) {
        let status = "\(response.status)"
        guard let problem = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any],
              let title = problem["title"] as? String else {
            // Not problem+json: libevent's own error pages, or something that is not jobpool.
            let body = String(decoding: response.body.prefix(300), as: UTF8.self)
                .split(whereSeparator: \.isNewline).joined(separator: " ")
            text = "the server answered \(status)" + (body.isEmpty ? "." : ": \(body)")
            return
        }
        var lines = ["\(title) (\(status))" + ((problem["detail"] as? String).map { ": \($0)" } ?? "")]
        for field in problem["errors"] as? [[String: Any]] ?? [] {
            let detail = field["detail"] as? String ?? ""
            let place = (field["pointer"] as? String) ?? (field["parameter"] as? String).map { "parameter \($0)" }
                ?? (field["header"] as? String).map { "header \($0)" } ?? (field["index"] as? Int).map { "job \($0)" }
            lines.append("  " + (place.map { "\($0): " } ?? "") + detail)
        }
        text = lines.joined(separator: "\n")
    }
}
