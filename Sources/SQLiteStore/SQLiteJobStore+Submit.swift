import Foundation
import GRDB
import JobCore

extension SQLiteJobStore {
    /// Inserts one submission's jobs. The writer runs it in a savepoint of the group commit, so
    /// that a submission refused by a constraint (a live idempotency key) is undone alone.
    ///
    /// An idempotency key is unique per owner while it lives (`jobs_by_idempotency_key`). An
    /// expired key still held by an older job is retired here, in the transaction that inserts
    /// its successor: the old job keeps its record, but no longer holds the key.
    func submit(_ jobs: [JobRecord], in db: Database) throws {
        for job in jobs {
            let idempotency = job.options.idempotency
            if let idempotency {
                // The submitter saw the old key expired at its `now` (about `createdAt`); so does
                // this write, even under a clock that runs ahead of the wall clock.
                let now = max(Date(), job.createdAt)
                try run(db, sql: """
                    UPDATE jobs SET idempotency_retired = 1
                    WHERE coalesce(owner, '') = ? AND idempotency_key = ? AND idempotency_retired = 0
                      AND idempotency_expires_at <= ?
                    """, arguments: [job.owner ?? "", idempotency.key, StoredRows.micros(now)])
            }
            let createdAt = StoredRows.micros(job.createdAt)
            try run(db, sql: """
                INSERT INTO jobs (created_at, id, kind, status, input, attempt, max_attempts, webhook_url, webhook_key, owner,
                                  priority, time_limit_seconds, next_attempt_at, idempotency_key, idempotency_fingerprint,
                                  idempotency_expires_at, webhook_secret_generated, id_on_time)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [createdAt, job.id.description, job.kind, job.status.rawValue,
                                 StoredRows.json(job.input), job.attempt, job.maxAttempts, job.webhook?.url,
                                 job.webhook.map { Data($0.key) }, job.owner, job.options.priority, job.options.timeLimitSeconds,
                                 job.nextAttemptAt.map(StoredRows.micros), idempotency?.key, idempotency?.fingerprint,
                                 idempotency.map { StoredRows.micros($0.expiresAt) },
                                 idempotency?.webhookSecretGenerated ?? false, StoredRows.idOnTime(job.id, createdAt: createdAt)])
        }
    }

    /// Why a submission was refused by a constraint, for its submitter.
    static func refusal(of jobs: [JobRecord], _ error: DatabaseError) -> StoreError {
        if error.message?.contains("jobs_by_idempotency_key") == true || error.message?.contains("idempotency_key") == true,
           let key = jobs.lazy.compactMap({ $0.options.idempotency?.key }).first {
            return StoreError("the Idempotency-Key \"\(key.prefix(255))\" already belongs to another job of this client, submitted at the same time; retry the request to receive that job",
                              isIdempotencyKeyTaken: true)
        }
        return StoreError("the job could not be stored: \(error.message ?? "constraint failed") (SQLite error \(error.extendedResultCode.rawValue))")
    }
}
