import Foundation
import GRDB
import JobCore

/// The questions the store answers. Each runs on a reader connection of the pool: in WAL mode a
/// reader sees the last commit and never waits for the writer, nor the writer for it.
extension SQLiteJobStore {
    /// By the primary key, in the millisecond the ID carries; failing that, through
    /// `jobs_by_id_off_time`, which holds the rows whose ID does not tell their time.
    public func job(withID id: JobID) throws(StoreError) -> StoredJob? {
        try read("read a job") { db in
            let range = StoredRows.idRange(of: id)
            if let found = try Row.fetchOne(db.cachedStatement(sql: Self.jobByIDOnTimeSQL),
                                            arguments: [range.lower, range.upper, id.description]) {
                return try StoredRows.storedJob(found)
            }
            return try Row.fetchOne(db.cachedStatement(sql: Self.jobByIDOffTimeSQL), arguments: [id.description])
                .map(StoredRows.storedJob)
        }
    }

    static let jobByIDOnTimeSQL = """
        SELECT j.*, \(StoredRows.webhookStatusColumns)
        FROM jobs j LEFT JOIN webhook_events e ON e.job_id = j.id
        WHERE j.created_at >= ? AND j.created_at < ? AND j.id = ?
        """

    static let jobByIDOffTimeSQL = """
        SELECT j.*, \(StoredRows.webhookStatusColumns)
        FROM jobs j LEFT JOIN webhook_events e ON e.job_id = j.id
        WHERE j.id = ? AND j.id_on_time = 0
        """

    public func jobs(matching filter: JobFilter, limit: Int, after cursor: JobCursor?) throws(StoreError) -> [StoredJob] {
        guard limit > 0 else { return [] }
        let query = JobListQuery(filter: filter, limit: limit, after: cursor)
        return try read("list jobs") { db in
            try Row.fetchAll(db.cachedStatement(sql: query.sql), arguments: query.arguments).map(StoredRows.storedJob)
        }
    }

    /// Through `jobs_by_idempotency_key`, which holds one live (unretired) key per owner.
    public func job(idempotencyKey key: String, owner: String?, now: Date) throws(StoreError) -> StoredJob? {
        try read("look up an idempotency key") { db in
            try Row.fetchOne(db.cachedStatement(sql: """
                SELECT j.*, \(StoredRows.webhookStatusColumns)
                FROM jobs j LEFT JOIN webhook_events e ON e.job_id = j.id
                WHERE coalesce(j.owner, '') = ? AND j.idempotency_key = ? AND j.idempotency_retired = 0
                  AND j.idempotency_expires_at > ?
                """), arguments: [owner ?? "", key, StoredRows.micros(now)]).map(StoredRows.storedJob)
        }
    }

    public func webhookEvent(of id: JobID) throws(StoreError) -> WebhookEventRecord? {
        try read("read a webhook event") { db in
            let attempts = try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM webhook_attempts WHERE job_id = ? ORDER BY number"),
                                            arguments: [id.description]).map(StoredRows.deliveryAttempt)
            return try Row.fetchOne(db.cachedStatement(sql: """
                SELECT e.*, j.webhook_key FROM webhook_events e
                LEFT JOIN jobs j ON j.created_at = e.job_created_at AND j.id = e.job_id WHERE e.job_id = ?
                """), arguments: [id.description]).map { try StoredRows.webhookEvent($0, attempts: attempts) }
        }
    }

    /// Oldest finished first through `jobs_by_finished`; a job whose webhook is still pending
    /// is passed over (and found again by a later sweep once it is delivered or has failed).
    public func expiredJobs(finishedBefore cutoff: Date, limit: Int) throws(StoreError) -> [StoredJobSummary] {
        guard limit > 0 else { return [] }
        return try read("find expired jobs") { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT created_at, id, owner, kind, status FROM jobs
                WHERE finished_at IS NOT NULL AND finished_at < ?
                  AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.job_id = jobs.id AND e.state = 'pending')
                ORDER BY finished_at, created_at, id LIMIT ?
                """), arguments: [StoredRows.micros(cutoff), limit]).map { row in
                let idText: String = row["id"]
                guard let id = JobID(idText), let status = JobState(rawValue: row["status"]) else {
                    throw StoreError("a job row is damaged (id \(idText.prefix(40)))")
                }
                return StoredJobSummary(key: JobKey(id: id, createdAt: StoredRows.date(row["created_at"])), owner: row["owner"],
                                        kind: row["kind"], status: status)
            }
        }
    }

    /// Runs `body` on a reader connection; `what` names the question in an error.
    func read<Value>(_ what: String, _ body: (Database) throws -> Value) throws(StoreError) -> Value {
        do {
            return try database.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot \(what) from the job store: \(Self.describe(error, path: path))")
        }
    }
}
