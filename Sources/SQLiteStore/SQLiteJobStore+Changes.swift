import Foundation
import GRDB
import JobCore

extension SQLiteJobStore {
    /// Writes one change inside the writer's transaction. Statements are prepared once and
    /// cached: the writer runs several per job, and preparing them was its largest cost.
    /// A job that finishes, or a finished job deleted, is counted in `counts`, which the
    /// transaction writes to `job_counts` once at its end.
    func apply(_ change: StoreChange, in db: Database, counts: inout FinishedCounts) throws {
        switch change {
        case .submitted(let jobs):
            try submit(jobs, in: db)

        case .retrying(let key, let attempt, let startedAt, let error, let at, let next):
            try run(db, sql: """
                UPDATE jobs SET status = 'scheduled', attempt = ?, next_attempt_at = ?, started_at = NULL,
                                error_code = ?, error_message = ?, error_status = ?
                WHERE created_at = ? AND id = ? AND attempt = ? AND finished_at IS NULL
                """, arguments: [attempt + 1, StoredRows.micros(next), error.code, error.message, error.status,
                                 StoredRows.micros(key.createdAt), key.id.description, attempt])
            guard db.changesCount > 0 else { return }
            try run(db, sql: """
                INSERT OR REPLACE INTO job_attempts (job_created_at, job_id, attempt, started_at, finished_at, outcome, error_code)
                VALUES (?, ?, ?, ?, ?, 'failed', ?)
                """, arguments: [StoredRows.micros(key.createdAt), key.id.description, attempt, StoredRows.micros(startedAt),
                                 StoredRows.micros(at), error.code])

        case .started(let key, let attempt, let at):
            try run(db, sql: """
                UPDATE jobs SET status = 'running', started_at = ?, attempt = ?, next_attempt_at = NULL
                WHERE created_at = ? AND id = ? AND attempt <= ? AND finished_at IS NULL
                """, arguments: [StoredRows.micros(at), attempt, StoredRows.micros(key.createdAt), key.id.description, attempt])

        case .finished(let key, let attempt, let startedAt, let status, let result, let error, let at, let event, let owner, let kind):
            // The attempt token: a stale attempt never overwrites a newer one's result.
            let update = """
                UPDATE jobs SET status = ?, result = ?, error_code = ?, error_message = ?, error_status = ?, finished_at = ?,
                                started_at = coalesce(?, started_at), next_attempt_at = NULL
                WHERE created_at = ? AND id = ? AND attempt = ? AND finished_at IS NULL
                """
            let arguments: StatementArguments = [
                status.rawValue, result.map(StoredRows.json), error?.code, error?.message, error?.status, StoredRows.micros(at),
                startedAt.map(StoredRows.micros), StoredRows.micros(key.createdAt), key.id.description, attempt,
            ]
            // Counted under the owner and kind the change names, not read back with RETURNING,
            // which SQLite serves through an ephemeral table opened and closed for every
            // finished job. A stale finish changes no row and counts nothing.
            try run(db, sql: update, arguments: arguments)
            guard db.changesCount > 0 else { return }
            counts.add(owner: owner, kind: kind, status: status.rawValue, 1)
            if let startedAt {
                try run(db, sql: """
                    INSERT OR REPLACE INTO job_attempts (job_created_at, job_id, attempt, started_at, finished_at, outcome, error_code)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [StoredRows.micros(key.createdAt), key.id.description, attempt, StoredRows.micros(startedAt),
                                     StoredRows.micros(at), status.rawValue, error?.code])
            }
            if let event {
                try run(db, sql: """
                    INSERT INTO webhook_events (job_id, webhook_id, url, body, state, round_start, next_attempt_at, job_created_at)
                    VALUES (?, ?, ?, ?, 'pending', 0, NULL, ?)
                    """, arguments: [key.id.description, event.webhookID, event.url, Data(event.body), StoredRows.micros(key.createdAt)])
            }

        case .requeued(let key, let attempt, let interrupted):
            if let interrupted {
                try run(db, sql: """
                    INSERT OR IGNORE INTO job_attempts (job_created_at, job_id, attempt, started_at, finished_at, outcome)
                    VALUES (?, ?, ?, ?, ?, 'interrupted')
                    """, arguments: [StoredRows.micros(key.createdAt), key.id.description, interrupted.attempt,
                                     StoredRows.micros(interrupted.startedAt), StoredRows.micros(Date())])
            }
            try run(db, sql: """
                UPDATE jobs SET status = 'queued', started_at = NULL, attempt = ?
                WHERE created_at = ? AND id = ? AND finished_at IS NULL
                """, arguments: [attempt, StoredRows.micros(key.createdAt), key.id.description])

        case .webhookAttempted(let id, let attempt, let state, let next):
            try run(db, sql: """
                INSERT OR REPLACE INTO webhook_attempts
                    (job_id, number, started_at, duration_us, status, error_code, error_message, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [id.description, attempt.number, StoredRows.micros(attempt.startedAt), StoredRows.micros(attempt.duration),
                                 attempt.status, attempt.error?.code, attempt.error?.message, attempt.nextAttemptAt.map(StoredRows.micros)])
            try run(db, sql: "UPDATE webhook_events SET state = ?, next_attempt_at = ? WHERE job_id = ?",
                    arguments: [state.rawValue, next.map(StoredRows.micros), id.description])

        case .webhookRedelivered(let id, let roundStart):
            try run(db, sql: "UPDATE webhook_events SET state = 'pending', round_start = ?, next_attempt_at = NULL WHERE job_id = ?",
                    arguments: [roundStart, id.description])

        case .webhookRendered(let id, let body):
            try run(db, sql: "UPDATE webhook_events SET body = ? WHERE job_id = ? AND length(body) = 0",
                    arguments: [Data(body), id.description])

        case .purged(let keys):
            for key in keys {
                let id = key.id.description
                let deleted = try Row.fetchOne(db.cachedStatement(sql: "DELETE FROM jobs WHERE created_at = ? AND id = ? RETURNING owner, kind, status"),
                                               arguments: [StoredRows.micros(key.createdAt), id])
                if let deleted { counts.add(owner: deleted["owner"], kind: deleted["kind"], status: deleted["status"], -1) }
                try run(db, sql: "DELETE FROM job_attempts WHERE job_created_at = ? AND job_id = ?",
                        arguments: [StoredRows.micros(key.createdAt), id])
                try run(db, sql: "DELETE FROM webhook_attempts WHERE job_id = ?", arguments: [id])
                try run(db, sql: "DELETE FROM webhook_events WHERE job_id = ?", arguments: [id])
            }

        case .cancelRequested:
            break // one process owns this store: every cancel is local
        }
    }

    /// Runs `sql` through GRDB's statement cache.
    func run(_ db: Database, sql: String, arguments: StatementArguments) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }
}

/// Changes to `job_counts` within one transaction, written once at its end: a group commit of
/// a thousand finished jobs of one kind is one upsert, not a thousand. (Triggers did this per
/// row, and cost the writer about 15 µs a job.) Only finished jobs are counted there; a start
/// counts the unfinished ones it reads.
struct FinishedCounts {
    private struct Key: Hashable {
        var owner: String
        var kind: String
        var status: String
    }

    private var deltas: [Key: Int] = [:]

    mutating func add(owner: String?, kind: String, status: String, _ delta: Int) {
        guard JobState(rawValue: status)?.isFinished == true else { return }
        deltas[Key(owner: owner ?? "", kind: kind, status: status), default: 0] += delta
    }

    /// Writes the deltas in the caller's transaction.
    func write(in db: Database) throws {
        for (key, delta) in deltas where delta != 0 {
            try db.cachedStatement(sql: """
                INSERT INTO job_counts (owner, kind, status, count) VALUES (?, ?, ?, ?)
                ON CONFLICT (owner, kind, status) DO UPDATE SET count = count + excluded.count
                """).execute(arguments: [key.owner, key.kind, key.status, delta])
        }
    }
}
