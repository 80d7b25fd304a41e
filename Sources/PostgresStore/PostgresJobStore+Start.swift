import Foundation
import JobCore
import Postgres

extension PostgresJobStore {
    /// The unfinished jobs, oldest first: the waiting ones through `jobs_by_status`, the
    /// running ones through `jobs_running_by_node` (`jobs_by_status` leaves them out, see
    /// ``PostgresSchema/version8``).
    static let unfinishedJobsSQL = """
        SELECT * FROM (SELECT * FROM jobs WHERE status IN ('scheduled', 'queued')
                       UNION ALL SELECT * FROM jobs WHERE status = 'running') AS unfinished
        ORDER BY created_at, id
        """

    /// The pending webhook events this node holds, with their job's secret: none for a node
    /// that just started under a fresh ID. Another node's pending events are never loaded (it
    /// may be delivering them); those of a node that died are released by the rescue sweep and
    /// claimed by the claim pass of whichever node is first (``claimWebhookEvents(limit:)``).
    static let pendingEventsSQL = """
        SELECT e.*, j.webhook_key FROM webhook_events e LEFT JOIN jobs j ON j.id = e.job_id
        WHERE e.state = 'pending' AND e.node = $1::uuid ORDER BY e.job_id
        """

    static let pendingAttemptsSQL = """
        SELECT a.* FROM webhook_events e JOIN webhook_attempts a ON a.job_id = e.job_id
        WHERE e.state = 'pending' AND e.node = $1::uuid ORDER BY a.job_id, a.number
        """

    /// Nothing: with several nodes on one database, a starting node cannot tell its previous
    /// process's running jobs from a live node's. Only the rescue sweeper takes jobs back, once
    /// their node's lease has expired (``PostgresJobStore/rescueExpired()``).
    public func requeueInterrupted(at now: Date) throws(StoreError) -> Int { 0 }

    /// What a start needs: the unfinished jobs, the pending webhook events this node holds, and the counts:
    /// finished jobs' kept by the triggers (summed over every node's rows), unfinished ones'
    /// counted from the jobs read. One snapshot (`REPEATABLE READ`), so they agree. Finished
    /// jobs are not read.
    public func loadUnfinished() throws(StoreError) -> StoredState {
        try read("read the unfinished jobs") { connection in
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { _ = try? connection.execute("COMMIT") }
            let jobs = try connection.query(Self.unfinishedJobsSQL).map(PostgresRowDecoding.job)
            var attempts: [JobID: [DeliveryAttempt]] = [:]
            for row in try connection.query(Self.pendingAttemptsSQL, [lease.membership.nodeID]) {
                attempts[try PostgresRowDecoding.jobID(row, "job_id"), default: []].append(try PostgresRowDecoding.deliveryAttempt(row))
            }
            let events = try connection.query(Self.pendingEventsSQL, [lease.membership.nodeID]).map { row in
                try PostgresRowDecoding.webhookEvent(row, attempts: attempts[try PostgresRowDecoding.jobID(row, "job_id")] ?? [])
            }
            var counts = try Self.finishedCounts(connection)
            for job in jobs { counts[JobCounts.Key(owner: job.owner, kind: job.kind, state: job.status), default: 0] += 1 }
            return StoredState(jobs: jobs, webhookEvents: events, counts: counts)
        }
    }

    /// The counts of finished jobs by owner, kind and state, over every node's rows; `''` is
    /// stored for no owner.
    static func finishedCounts(_ connection: PostgresConnection) throws -> [JobCounts.Key: Int] {
        try counts(connection, """
            SELECT owner, kind, status, sum(count) AS count FROM job_counts GROUP BY owner, kind, status HAVING sum(count) > 0
            """)
    }

    /// Every job of the cluster by owner, kind and state: the finished ones from every node's
    /// counters, the unfinished ones counted through the partial indexes of due and running
    /// jobs (so the cost follows the live work, not the table).
    static func clusterCounts(_ connection: PostgresConnection) throws -> [JobCounts.Key: Int] {
        try counts(connection, """
            SELECT owner, kind, status, sum(count) AS count FROM (
                SELECT owner, kind, status, count FROM job_counts
                UNION ALL
                SELECT coalesce(owner, ''), kind, status, count(*) FROM jobs WHERE status IN ('queued', 'scheduled')
                GROUP BY 1, 2, 3
                UNION ALL
                SELECT coalesce(owner, ''), kind, status, count(*) FROM jobs WHERE status = 'running'
                GROUP BY 1, 2, 3) c
            GROUP BY owner, kind, status HAVING sum(count) > 0
            """)
    }

    private static func counts(_ connection: PostgresConnection, _ sql: String) throws -> [JobCounts.Key: Int] {
        var counts: [JobCounts.Key: Int] = [:]
        let rows = try connection.query(sql)
        for row in rows {
            let status = try row.string("status")
            guard let state = JobState(rawValue: status) else {
                throw StoreError("the job counts hold an unknown state \(status.prefix(40))")
            }
            let owner = try row.string("owner")
            counts[JobCounts.Key(owner: owner.isEmpty ? nil : owner, kind: try row.string("kind"), state: state), default: 0]
                += try row.int("count")
        }
        return counts
    }
}
