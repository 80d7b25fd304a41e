import Foundation
import JobCore
import Postgres

extension PostgresJobStore {
    /// Rows per `INSERT`: 17 parameters each, under libpq's limit of 65,535 per statement.
    static let rowsPerInsert = 1000

    /// Inserts one submission's jobs, retiring first any expired idempotency key that one of
    /// them takes over (the old job keeps its record, but no longer holds the key).
    func submit(_ jobs: [JobRecord], on connection: PostgresConnection) throws {
        for job in jobs {
            guard let idempotency = job.options.idempotency else { continue }
            // The submitter saw the old key expired at its `now` (about `createdAt`); so does
            // this write, even under a clock that runs ahead of the wall clock.
            let now = max(Date(), job.createdAt)
            try connection.execute("""
                UPDATE jobs SET idempotency_retired = true
                WHERE coalesce(owner, '') = $1 AND idempotency_key = $2 AND NOT idempotency_retired
                  AND idempotency_expires_at <= $3::bigint
                """, [job.owner ?? "", idempotency.key, StoredTime.micros(now)])
        }
        try insert(jobs, on: connection)
    }

    /// Inserts jobs, up to ``rowsPerInsert`` to a statement.
    func insert(_ jobs: [JobRecord], on connection: PostgresConnection) throws {
        var start = 0
        while start < jobs.count {
            let chunk = jobs[start..<min(jobs.count, start + Self.rowsPerInsert)]
            start += chunk.count
            var parameters: [(any PostgresBindable)?] = []
            parameters.reserveCapacity(chunk.count * 17)
            var rows: [String] = []
            rows.reserveCapacity(chunk.count)
            for job in chunk {
                let first = parameters.count
                let idempotency = job.options.idempotency
                parameters += [
                    job.id.description, StoredTime.micros(job.createdAt), job.kind, job.status.rawValue,
                    PostgresRowDecoding.json(job.input), job.attempt, job.maxAttempts, job.webhook?.url,
                    job.webhook.map { PostgresBytes($0.key) }, job.owner, job.options.priority, job.options.timeLimitSeconds,
                    job.nextAttemptAt.map(StoredTime.micros), idempotency?.key, idempotency?.fingerprint,
                    idempotency.map { StoredTime.micros($0.expiresAt) }, idempotency?.webhookSecretGenerated ?? false,
                ] as [(any PostgresBindable)?]
                let casts = Self.insertCasts.enumerated().map { offset, cast in "$\(first + offset + 1)\(cast)" }
                rows.append("(" + casts.joined(separator: ", ") + ")")
            }
            try connection.execute("""
                INSERT INTO jobs (id, created_at, kind, status, input, attempt, max_attempts, webhook_url, webhook_key, owner,
                                  priority, time_limit_seconds, next_attempt_at, idempotency_key, idempotency_fingerprint,
                                  idempotency_expires_at, webhook_secret_generated)
                VALUES \(rows.joined(separator: ", "))
                """, parameters)
        }
    }

    /// The type of each inserted column, in the order above.
    private static let insertCasts = [
        "::uuid", "::bigint", "::text", "::text", "::text", "::int", "::int", "::text", "::bytea", "::text", "::int",
        "::float8", "::bigint", "::text", "::text", "::bigint", "::bool",
    ]

    /// Why a submission was refused by the database, for its submitter.
    static func refusal(of jobs: [JobRecord], _ error: PostgresError) -> StoreError {
        if error.isUniqueViolation, error.constraint == "jobs_by_idempotency_key" || error.constraint == nil,
           let key = jobs.lazy.compactMap({ $0.options.idempotency?.key }).first {
            return StoreError("the Idempotency-Key \"\(key.prefix(255))\" already belongs to another job of this client, submitted at the same time; retry the request to receive that job",
                              isIdempotencyKeyTaken: true)
        }
        return StoreError("the job could not be stored: \(error)")
    }
}
