import Foundation
import JobCore
import Postgres

/// Claimed rows this node cannot read. A claim commits its rows as running on this node before
/// the node decodes them, so a row that fails to decode (a column a newer schema changed, a
/// value written by hand) would stay running here, never run, until this node stopped: the
/// rescue takes only dead nodes' jobs. Such a job is handed back instead, as `scheduled` a
/// minute later, with the reason as its error (`unreadable`): another node, or a jobpool that
/// reads it, runs it then, and a damaged row comes back once a minute rather than at every
/// claim. Its attempt is not spent: it never ran.
extension PostgresWorkQueue {
    struct UnreadableRow {
        /// Nil only if the key itself is unreadable; such a row cannot be named to hand it back.
        var id: JobID?
        var error: any Error
    }

    /// How long a handed-back job waits before a claim may take it again.
    static let unreadableRetryDelay: Duration = .seconds(60)

    func handBack(_ rows: [UnreadableRow], nodeID: String, on connection: PostgresConnection) throws {
        let ids = rows.compactMap(\.id)
        let reason = "jobpool node \(nodeID) (schema \(PostgresSchema.currentVersion)) claimed this job but could not read its row: "
            + "\(rows.first.map { "\($0.error)" } ?? "")"
        let handed = try connection.execute("""
            UPDATE jobs SET status = 'scheduled', started_at = NULL, node = NULL,
                            next_attempt_at = (extract(epoch FROM now()) * 1000000)::bigint + $3::bigint,
                            error_code = 'unreadable', error_message = $4, error_status = NULL
            WHERE id = ANY($1::uuid[]) AND status = 'running' AND node = $2::uuid
            """, [PostgresArray(ids.map(\.description)), nodeID, Self.unreadableRetryDelay.clampedMicroseconds, String(reason.prefix(500))])
        logger.error("Claimed jobs whose rows this node cannot read were handed back, to be claimed again later", metadata: [
            "count": "\(rows.count)", "handed_back": "\(handed)", "job.ids": "\(ids.prefix(5).map(\.description))",
            "error": "\(target.scrub("\(rows.first.map { "\($0.error)" } ?? "")"))",
        ])
    }
}
