import Foundation
import JobCore
import Postgres

/// Turns rows into the store's types. The columns are the SQLite store's (see
/// `StoredRows` there); times are ``StoredTime`` microseconds.
enum PostgresRowDecoding {
    static func json(_ value: JSONValue) -> String {
        var writer = JSONWriter()
        writer.value(value)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    static func jobID(_ row: PostgresRow, _ column: String) throws -> JobID {
        let text = try row.string(column)
        guard let id = JobID(text) else { throw StoreError("a row is damaged (job id \(text.prefix(40)))") }
        return id
    }

    static func state(_ row: PostgresRow) throws -> JobState {
        let text = try row.string("status")
        guard let state = JobState(rawValue: text) else { throw StoreError("a job row holds an unknown state \(text.prefix(40))") }
        return state
    }

    /// A row of `jobs`.
    static func job(_ row: PostgresRow) throws -> JobRecord {
        let input = (try? JSONParser.parse(Array(try row.string("input").utf8))) ?? .null
        let result = try row.optionalString("result").flatMap { try? JSONParser.parse(Array($0.utf8)) }
        let error = try row.optionalString("error_code").map { code throws in
            JobFailure(code: code, message: try row.optionalString("error_message") ?? "", status: try row.optionalInt("error_status"))
        }
        let idempotency = try row.optionalString("idempotency_key").map { key throws in
            IdempotencyRecord(key: key, fingerprint: try row.optionalString("idempotency_fingerprint") ?? "",
                              expiresAt: StoredTime.date(try row.optionalInt64("idempotency_expires_at") ?? 0),
                              webhookSecretGenerated: try row.bool("webhook_secret_generated"))
        }
        let options = JobOptions(maxAttempts: try row.int("max_attempts"), priority: try row.int("priority"),
                                 timeLimitSeconds: try row.optionalDouble("time_limit_seconds"), idempotency: idempotency)
        let webhook = try row.optionalString("webhook_url").map { url throws in
            WebhookTarget(url: url, key: try row.optionalBytes("webhook_key") ?? [])
        }
        return JobRecord(
            id: try jobID(row, "id"), kind: try row.string("kind"), input: input, status: try state(row), result: result,
            error: error, createdAt: StoredTime.date(try row.int64("created_at")),
            startedAt: try row.optionalInt64("started_at").map(StoredTime.date),
            finishedAt: try row.optionalInt64("finished_at").map(StoredTime.date),
            nextAttemptAt: try row.optionalInt64("next_attempt_at").map(StoredTime.date),
            attempt: try row.int("attempt"), options: options, webhook: webhook, owner: try row.optionalString("owner"))
    }

    /// The columns that ``storedJob(_:)`` reads beside the job's own, from `jobs j` joined to
    /// `webhook_events e`: the webhook's delivery state, with its attempts counted only for a
    /// job that has an event.
    static let webhookStatusColumns = """
        e.url AS event_url, e.state AS event_state,
        CASE WHEN e.job_id IS NULL THEN 0
             ELSE (SELECT count(*) FROM webhook_attempts a WHERE a.job_id = j.id) END AS event_attempts
        """

    /// A row of `jobs` with ``webhookStatusColumns``. A job with a webhook whose event is not
    /// written yet (it has not finished) shows it pending with no attempts.
    static func storedJob(_ row: PostgresRow) throws -> StoredJob {
        let record = try job(row)
        let status: WebhookStatus? = if let url = try row.optionalString("event_url") {
            WebhookStatus(url: url, state: WebhookState(rawValue: try row.string("event_state")) ?? .pending,
                          attempts: try row.int("event_attempts"))
        } else {
            record.webhook.map { WebhookStatus(url: $0.url, state: .pending, attempts: 0) }
        }
        return StoredJob(record: record, webhookStatus: status)
    }

    /// A row of `webhook_attempts`.
    static func deliveryAttempt(_ row: PostgresRow) throws -> DeliveryAttempt {
        let error = try row.optionalString("error_code").map { code throws in
            JobFailure(code: code, message: try row.optionalString("error_message") ?? "")
        }
        return DeliveryAttempt(
            number: try row.int("number"), startedAt: StoredTime.date(try row.int64("started_at")),
            duration: .microseconds(try row.int64("duration_us")), status: try row.optionalInt("status"), error: error,
            nextAttemptAt: try row.optionalInt64("next_attempt_at").map(StoredTime.date))
    }

    /// A row of `webhook_events` with the job's secret as `webhook_key`.
    static func webhookEvent(_ row: PostgresRow, attempts: [DeliveryAttempt]) throws -> WebhookEventRecord {
        WebhookEventRecord(
            jobID: try jobID(row, "job_id"), webhookID: try row.string("webhook_id"), url: try row.string("url"),
            key: try row.optionalBytes("webhook_key") ?? [], body: try row.bytes("body"),
            state: WebhookState(rawValue: try row.string("state")) ?? .pending, attempts: attempts,
            roundStart: try row.int("round_start"), nextAttemptAt: try row.optionalInt64("next_attempt_at").map(StoredTime.date))
    }

    /// A row with `created_at, id, owner, kind, status`.
    static func summary(_ row: PostgresRow) throws -> StoredJobSummary {
        StoredJobSummary(key: JobKey(id: try jobID(row, "id"), createdAt: StoredTime.date(try row.int64("created_at"))),
                         owner: try row.optionalString("owner"), kind: try row.string("kind"), status: try state(row))
    }
}
