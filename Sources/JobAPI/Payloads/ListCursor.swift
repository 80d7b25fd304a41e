import Foundation
import JobCore

/// The opaque `cursor` of `GET /v1/jobs`: base64url of `v1:<created_at µs>:<id>`. Clients must
/// not build it; the version prefix lets the format change without breaking old cursors.
enum ListCursor {
    static func encode(_ cursor: JobCursor) -> String {
        let micros = Int64((cursor.createdAt.timeIntervalSince1970 * 1_000_000).rounded())
        let text = "v1:\(micros):\(cursor.id)"
        return Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> JobCursor? {
        guard text.count <= 200 else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let plain = String(data: data, encoding: .utf8) else { return nil }
        let parts = plain.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let micros = Int64(parts[1]), let id = JobID(parts[2]) else { return nil }
        return JobKey(id: id, createdAt: Date(timeIntervalSince1970: Double(micros) / 1_000_000))
    }
}
