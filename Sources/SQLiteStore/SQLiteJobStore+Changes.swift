import Foundation
import GRDB
import JobCore

extension SQLiteJobStore {
    /// Writes one change inside the writer's transaction. Statements are prepared once and
    /// cached: the writer runs several per job, and preparing them was its largest cost.
    func apply(_ change: StoreChange, in db: Database) throws {
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

        case .finished(let key, let attempt, let startedAt, let status, let result, let error, let at, let event):
            // The attempt token: a stale attempt never overwrites a newer one's result.
            try run(db, sql: """
                UPDATE jobs SET status = ?, result = ?, error_code = ?, error_message = ?, error_status = ?, finished_at = ?,
                                started_at = coalesce(?, started_at), next_attempt_at = NULL
                WHERE created_at = ? AND id = ? AND attempt = ? AND finished_at IS NULL
                """, arguments: [status.rawValue, result.map(StoredRows.json), error?.code, error?.message, error?.status, StoredRows.micros(at),
                                 startedAt.map(StoredRows.micros), StoredRows.micros(key.createdAt), key.id.description, attempt])
            guard db.changesCount > 0 else { return }
            if let startedAt {
                try run(db, sql: """
                    INSERT OR REPLACE INTO job_attempts (job_created_at, job_id, attempt, started_at, finished_at, outcome, error_code)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [StoredRows.micros(key.createdAt), key.id.description, attempt, StoredRows.micros(startedAt),
                                     StoredRows.micros(at), status.rawValue, error?.code])
            }
            if let event {
                try run(db, sql: """
                    INSERT INTO webhook_events (job_id, webhook_id, url, body, state, round_start, next_attempt_at)
                    VALUES (?, ?, ?, ?, 'pending', 0, NULL)
                    """, arguments: [key.id.description, event.webhookID, event.url, Data(event.body)])
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

        case .purged(let keys):
            for key in keys {
                let id = key.id.description
                try run(db, sql: "DELETE FROM jobs WHERE created_at = ? AND id = ?", arguments: [StoredRows.micros(key.createdAt), id])
                try run(db, sql: "DELETE FROM job_attempts WHERE job_created_at = ? AND job_id = ?",
                        arguments: [StoredRows.micros(key.createdAt), id])
                try run(db, sql: "DELETE FROM webhook_attempts WHERE job_id = ?", arguments: [id])
                try run(db, sql: "DELETE FROM webhook_events WHERE job_id = ?", arguments: [id])
            }
        }
    }

    /// Runs `sql` through GRDB's statement cache.
    func run(_ db: Database, sql: String, arguments: StatementArguments) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }
}
