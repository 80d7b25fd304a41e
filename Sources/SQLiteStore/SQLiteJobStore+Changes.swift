import Foundation
import GRDB
import JobCore

extension SQLiteJobStore {
    /// Writes one change inside the writer's transaction.
    func apply(_ change: StoreChange, in db: Database) throws {
        switch change {
        case .submitted(let job):
            try db.execute(sql: """
                INSERT INTO jobs (id, kind, status, input, created_at, attempt, max_attempts, webhook_url, webhook_key)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [job.id.description, job.kind, job.status.rawValue, Self.json(job.input),
                                 Self.micros(job.createdAt), job.attempt, job.maxAttempts,
                                 job.webhook?.url, job.webhook.map { Data($0.key) }])

        case .started(let id, let attempt, let at):
            try db.execute(sql: "UPDATE jobs SET status = 'running', started_at = ?, attempt = ? WHERE id = ? AND attempt <= ?",
                           arguments: [Self.micros(at), attempt, id.description, attempt])
            try db.execute(sql: "INSERT OR REPLACE INTO job_attempts (job_id, attempt, started_at) VALUES (?, ?, ?)",
                           arguments: [id.description, attempt, Self.micros(at)])

        case .finished(let id, let attempt, let status, let result, let error, let at, let event):
            // The attempt token: a stale attempt never overwrites a newer one's result.
            try db.execute(sql: """
                UPDATE jobs SET status = ?, result = ?, error_code = ?, error_message = ?, finished_at = ?
                WHERE id = ? AND attempt = ? AND finished_at IS NULL
                """, arguments: [status.rawValue, result.map(Self.json), error?.code, error?.message, Self.micros(at),
                                 id.description, attempt])
            guard db.changesCount > 0 else { return }
            try db.execute(sql: "UPDATE job_attempts SET finished_at = ?, outcome = ? WHERE job_id = ? AND attempt = ?",
                           arguments: [Self.micros(at), status.rawValue, id.description, attempt])
            if let event {
                try db.execute(sql: """
                    INSERT INTO webhook_events (job_id, webhook_id, url, body, state, round_start, next_attempt_at)
                    VALUES (?, ?, ?, ?, 'pending', 0, NULL)
                    """, arguments: [id.description, event.webhookID, event.url, Data(event.body)])
            }

        case .requeued(let id, let attempt):
            try db.execute(sql: "UPDATE job_attempts SET outcome = 'interrupted', finished_at = ? WHERE job_id = ? AND outcome IS NULL",
                           arguments: [Self.micros(Date()), id.description])
            try db.execute(sql: "UPDATE jobs SET status = 'queued', started_at = NULL, attempt = ? WHERE id = ? AND finished_at IS NULL",
                           arguments: [attempt, id.description])

        case .webhookAttempted(let id, let attempt, let state, let next):
            try db.execute(sql: """
                INSERT OR REPLACE INTO webhook_attempts
                    (job_id, number, started_at, duration_us, status, error_code, error_message, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [id.description, attempt.number, Self.micros(attempt.startedAt), Self.micros(attempt.duration),
                                 attempt.status, attempt.error?.code, attempt.error?.message, next.map(Self.micros)])
            try db.execute(sql: "UPDATE webhook_events SET state = ?, next_attempt_at = ? WHERE job_id = ?",
                           arguments: [state.rawValue, next.map(Self.micros), id.description])

        case .webhookRedelivered(let id, let roundStart):
            try db.execute(sql: "UPDATE webhook_events SET state = 'pending', round_start = ?, next_attempt_at = NULL WHERE job_id = ?",
                           arguments: [roundStart, id.description])

        case .purged(let ids):
            for id in ids {
                try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [id.description])
            }
        }
    }

    static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    static func micros(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    }

    static func date(_ micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }

    static func json(_ value: JSONValue) -> String {
        var writer = JSONWriter()
        writer.value(value)
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}
