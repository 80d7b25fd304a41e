import Foundation
import GRDB
import JobCore

extension SQLiteJobStore {
    /// The unfinished jobs, oldest first. `jobs_by_status` turns this into one seek per live
    /// state, so a start reads only live rows (and sorts them) however many finished jobs the
    /// file holds; a test checks the plan.
    static let unfinishedJobsSQL = """
        SELECT * FROM jobs WHERE status IN ('scheduled', 'queued', 'running') ORDER BY created_at, id
        """

    /// The pending webhook events with their job's secret, through `webhook_events_pending`.
    static let pendingEventsSQL = """
        SELECT e.*, j.webhook_key FROM webhook_events e LEFT JOIN jobs j ON j.created_at = e.job_created_at AND j.id = e.job_id
        WHERE e.state = 'pending' ORDER BY e.job_id
        """

    static let pendingAttemptsSQL = """
        SELECT a.* FROM webhook_events e JOIN webhook_attempts a ON a.job_id = e.job_id
        WHERE e.state = 'pending' ORDER BY a.job_id, a.number
        """

    /// Re-queues what a previous process left running, in one transaction, under this
    /// process's owner lock: the store's own recovery, not the pool's.
    public func requeueInterrupted(at now: Date) throws(StoreError) -> Int {
        do {
            return try database.write { db in
                try db.execute(sql: """
                    INSERT OR IGNORE INTO job_attempts (job_created_at, job_id, attempt, started_at, finished_at, outcome)
                    SELECT created_at, id, attempt, coalesce(started_at, created_at), ?, 'interrupted'
                    FROM jobs WHERE status = 'running' AND attempt < max_attempts
                    """, arguments: [StoredRows.micros(now)])
                try db.execute(sql: """
                    UPDATE jobs SET status = 'queued', attempt = attempt + 1, started_at = NULL
                    WHERE status = 'running' AND attempt < max_attempts
                    """)
                return db.changesCount
            }
        } catch {
            throw StoreError("cannot re-queue interrupted jobs: \(Self.describe(error, path: path))")
        }
    }

    /// What a start needs: the unfinished jobs, the pending webhook events, and the counts:
    /// finished jobs' from `job_counts` (kept by the writer), unfinished ones' counted from the
    /// jobs read. Finished jobs stay on disk; how many job rows this read is left in
    /// ``lastStartRowsRead``.
    public func loadUnfinished() throws(StoreError) -> StoredState {
        do {
            let (state, rowsRead) = try database.read { db -> (StoredState, Int) in
                var jobs: [JobRecord] = []
                let rows = try Row.fetchCursor(db, sql: Self.unfinishedJobsSQL)
                while let row = try rows.next() { jobs.append(try StoredRows.job(row)) }

                var attempts: [String: [DeliveryAttempt]] = [:]
                for row in try Row.fetchAll(db, sql: Self.pendingAttemptsSQL) {
                    attempts[row["job_id"], default: []].append(StoredRows.deliveryAttempt(row))
                }
                let events = try Row.fetchAll(db, sql: Self.pendingEventsSQL).map { row in
                    try StoredRows.webhookEvent(row, attempts: attempts[row["job_id"]] ?? [])
                }
                var counts = try Self.finishedCounts(db)
                for job in jobs { counts[JobCounts.Key(owner: job.owner, kind: job.kind, state: job.status), default: 0] += 1 }
                return (StoredState(jobs: jobs, webhookEvents: events, counts: counts), jobs.count)
            }
            lastStartRowsReadValue.store(rowsRead, ordering: .relaxed)
            return state
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot read the job store: \(Self.describe(error, path: path))")
        }
    }

    /// The counts of finished jobs by owner, kind and state; `''` is stored for no owner.
    static func finishedCounts(_ db: Database) throws -> [JobCounts.Key: Int] {
        var counts: [JobCounts.Key: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT owner, kind, status, count FROM job_counts WHERE count > 0") {
            guard let state = JobState(rawValue: row["status"]) else {
                throw StoreError("the job counts hold an unknown state \((row["status"] as String).prefix(40))")
            }
            let owner: String = row["owner"]
            counts[JobCounts.Key(owner: owner.isEmpty ? nil : owner, kind: row["kind"], state: state), default: 0] += row["count"] as Int
        }
        return counts
    }
}
