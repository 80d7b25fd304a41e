import Foundation
import JobCore
import Postgres

/// The questions the store answers, each on a connection of the reader pool. A read that finds
/// its idle connection lost (the database restarted) runs once more on a new one.
extension PostgresJobStore {
    public func job(withID id: JobID) throws(StoreError) -> StoredJob? {
        try read("read a job") { connection in
            try connection.query("""
                SELECT j.*, \(PostgresRowDecoding.webhookStatusColumns)
                FROM jobs j LEFT JOIN webhook_events e ON e.job_id = j.id
                WHERE j.id = $1::uuid
                """, [id.description]).first.map(PostgresRowDecoding.storedJob)
        }
    }

    /// One statement for all of them; `jobs(withIDs:)` callers pass a bounded number.
    public func jobs(withIDs ids: [JobID]) throws(StoreError) -> [StoredJob] {
        guard !ids.isEmpty else { return [] }
        return try read("read jobs") { connection in
            try connection.query(Self.jobsByIDsSQL, [PostgresArray(ids.map(\.description))]).map(PostgresRowDecoding.storedJob)
        }
    }

    /// The jobs named by `$1`, each looked up by its key. Written as `j.id = ANY($1)`, the
    /// planner read the whole table for a few hundred IDs (measured: 300 IDs among 20,000 jobs,
    /// a sequential scan and a hash join, 4.3 ms, against 0.1 ms a lookup), and on two nodes
    /// it cost a quarter of the throughput. `OFFSET 0` keeps the lookup a subquery run per ID, which
    /// the planner cannot turn into such a join.
    static let jobsByIDsSQL = """
        SELECT found.* FROM unnest($1::uuid[]) AS wanted(id)
        CROSS JOIN LATERAL (
            SELECT j.*, \(PostgresRowDecoding.webhookStatusColumns)
            FROM jobs j LEFT JOIN webhook_events e ON e.job_id = j.id
            WHERE j.id = wanted.id OFFSET 0) found
        """

    public func jobs(matching filter: JobFilter, limit: Int, after cursor: JobCursor?) throws(StoreError) -> [StoredJob] {
        guard limit > 0 else { return [] }
        let query = PostgresJobListQuery(filter: filter, limit: limit, after: cursor)
        return try read("list jobs") { connection in
            try connection.query(query.sql, query.parameters).map(PostgresRowDecoding.storedJob)
        }
    }

    /// Through `jobs_by_idempotency_key`, which holds one live (unretired) key per owner.
    public func job(idempotencyKey key: String, owner: String?, now: Date) throws(StoreError) -> StoredJob? {
        try read("look up an idempotency key") { connection in
            try connection.query("""
                SELECT j.*, \(PostgresRowDecoding.webhookStatusColumns)
                FROM jobs j LEFT JOIN webhook_events e ON e.job_id = j.id
                WHERE coalesce(j.owner, '') = $1 AND j.idempotency_key = $2 AND NOT j.idempotency_retired
                  AND j.idempotency_expires_at > $3::bigint
                """, [owner ?? "", key, StoredTime.micros(now)]).first.map(PostgresRowDecoding.storedJob)
        }
    }

    public func webhookEvent(of id: JobID) throws(StoreError) -> WebhookEventRecord? {
        try read("read a webhook event") { connection in
            let attempts = try connection.query("SELECT * FROM webhook_attempts WHERE job_id = $1::uuid ORDER BY number",
                                                [id.description]).map(PostgresRowDecoding.deliveryAttempt)
            return try connection.query("""
                SELECT e.*, j.webhook_key FROM webhook_events e LEFT JOIN jobs j ON j.id = e.job_id WHERE e.job_id = $1::uuid
                """, [id.description]).first.map { try PostgresRowDecoding.webhookEvent($0, attempts: attempts) }
        }
    }

    /// Oldest finished first through `jobs_by_finished`; a job whose webhook is still pending
    /// is passed over (and found again by a later sweep once it is delivered or has failed).
    public func expiredJobs(finishedBefore cutoff: Date, limit: Int) throws(StoreError) -> [StoredJobSummary] {
        guard limit > 0 else { return [] }
        return try read("find expired jobs") { connection in
            try connection.query("""
                SELECT created_at, id, owner, kind, status FROM jobs
                WHERE finished_at IS NOT NULL AND finished_at < $1::bigint
                  AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.job_id = jobs.id AND e.state = 'pending')
                ORDER BY finished_at, created_at, id LIMIT $2::int
                """, [StoredTime.micros(cutoff), limit]).map(PostgresRowDecoding.summary)
        }
    }

    /// Every job of the cluster by owner, kind and state (this node's counters know only the
    /// jobs it finished).
    public func clusterCounts() throws(StoreError) -> [JobCounts.Key: Int]? {
        try read("count the jobs") { try Self.clusterCounts($0) }
    }

    /// Runs `body` on a reader connection; `what` names the question in an error.
    func read<Value>(_ what: String, _ body: (PostgresConnection) throws -> Value) throws(StoreError) -> Value {
        do {
            return try readers.withConnection(retryIfStale: true, body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot \(what) from the job store at \(target.redacted): \(target.scrub("\(error)"))")
        }
    }
}
