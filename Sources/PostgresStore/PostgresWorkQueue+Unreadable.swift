import Foundation
import JobCore
import Postgres

/// Claimed rows this node cannot read. A claim commits its rows as running on this node before
/// the node decodes them, so a row that fails to decode (a column a newer schema changed, a
/// value written by hand) would stay running here, never run, until this node stopped: the
/// rescue takes only dead nodes' jobs. Such a job is handed back instead, as `scheduled` a
/// minute later: another node, or this one once upgraded, runs it then, and a damaged row
/// comes back once a minute rather than at every claim. Its attempt is not spent (it never
/// ran), and its row keeps its last error: the reason goes to this node's log only, since a
/// decoding error quotes the row's values (a webhook key's first bytes, say), which no client
/// may read.
///
/// A hand-back whose write fails (the connection lost just after the claim's commit, or the
/// commit itself failed, kept or not) is tried again at the next pass. The write is fenced
/// on the row still running on this node, so trying again after a claim that was not kept
/// changes nothing.
extension PostgresWorkQueue {
    struct UnreadableRow {
        var id: JobID
        var error: any Error
    }

    /// How long a handed-back job waits before a claim may take it again.
    static let unreadableRetryDelay: Duration = .seconds(60)

    /// Hands back `rows` and any left from an earlier pass; the ones not handed back wait for
    /// the next pass.
    func handBack(_ rows: [UnreadableRow], nodeID: String, on connection: PostgresConnection) throws {
        let ids = pendingHandBacks(adding: rows.map(\.id))
        guard !ids.isEmpty else { return }
        if !rows.isEmpty {
            logger.error("Claimed jobs whose rows this node cannot read are handed back, to be claimed again in a minute", metadata: [
                "count": "\(rows.count)", "job.ids": "\(rows.prefix(5).map(\.id.description))",
                "error": "\(target.scrub(rows.prefix(3).map { "\($0.id): \($0.error)" }.joined(separator: "; ")))",
            ])
        }
        try connection.execute("""
            UPDATE jobs SET status = 'scheduled', started_at = NULL, node = NULL,
                            next_attempt_at = (extract(epoch FROM now()) * 1000000)::bigint + $3::bigint
            WHERE id = ANY($1::uuid[]) AND status = 'running' AND node = $2::uuid
            """, [PostgresArray(ids.map(\.description)), nodeID, Self.unreadableRetryDelay.clampedMicroseconds])
        handedBack(ids)
    }
}
