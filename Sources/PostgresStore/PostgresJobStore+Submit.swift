import Foundation
import JobCore
import Postgres

extension PostgresJobStore {
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

    /// Inserts jobs, one array per column: the statement's text is always the same, so it is
    /// prepared once per connection. (A multi-row `VALUES` of 17 parameters a row was a new text
    /// for every batch size, parsed and planned every time, and never prepared past 64
    /// parameters: measured, a tenth of a busy database's time went to parsing and analysing
    /// submissions.) A batch goes in statements of at most ``rowsPerInsert`` jobs, or about
    /// ``bytesPerInsert`` of input: a group commit after a stall can gather a great many
    /// submissions, and one parameter may not pass 1 GB.
    func insert(_ jobs: [JobRecord], on connection: PostgresConnection) throws {
        var columns = Array(repeating: [String?](), count: 17)
        var inputBytes = 0
        func flush() throws {
            guard !columns[0].isEmpty else { return }
            try connection.execute(Self.insertSQL, columns.map { PostgresArray($0) })
            for column in columns.indices { columns[column].removeAll(keepingCapacity: true) }
            inputBytes = 0
        }
        for job in jobs {
            let idempotency = job.options.idempotency
            let input = PostgresRowDecoding.json(job.input)
            let row: [(any PostgresBindable)?] = [
                job.id.description, StoredTime.micros(job.createdAt), job.kind, job.status.rawValue,
                input, job.attempt, job.maxAttempts, job.webhook?.url,
                job.webhook.map { PostgresBytes($0.key) }, job.owner, job.options.priority, job.options.timeLimitSeconds,
                job.nextAttemptAt.map(StoredTime.micros), idempotency?.key, idempotency?.fingerprint,
                idempotency.map { StoredTime.micros($0.expiresAt) }, idempotency?.webhookSecretGenerated ?? false,
            ]
            for (column, value) in row.enumerated() { columns[column].append(value?.postgresText) }
            inputBytes += input.utf8.count
            if columns[0].count >= Self.rowsPerInsert || inputBytes >= Self.bytesPerInsert { try flush() }
        }
        try flush()
    }

    static let rowsPerInsert = 1000
    static let bytesPerInsert = 16 << 20

    /// `$1`…`$17`: the columns of the jobs, one array each, in the order listed.
    static let insertSQL = """
        INSERT INTO jobs (id, created_at, kind, status, input, attempt, max_attempts, webhook_url, webhook_key, owner,
                          priority, time_limit_seconds, next_attempt_at, idempotency_key, idempotency_fingerprint,
                          idempotency_expires_at, webhook_secret_generated)
        SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::text[],
                             $9::bytea[], $10::text[], $11::int[], $12::float8[], $13::bigint[], $14::text[], $15::text[],
                             $16::bigint[], $17::bool[])
        """

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
