import Foundation
import GRDB
import JobCore

/// Turns rows into the store's types, and times into the integers they are stored as
/// (``StoredTime``: whole microseconds since 1970, UTC, as the PostgreSQL store keeps them too).
enum StoredRows {
    static func micros(_ date: Date) -> Int64 { StoredTime.micros(date) }

    static func micros(_ duration: Duration) -> Int64 {
        duration.clampedMicroseconds
    }

    static func date(_ micros: Int64) -> Date { StoredTime.date(micros) }

    /// True when the ID's millisecond is its creation time's, so that ``idRange(of:)`` finds it
    /// through the primary key (see `v7FindJobsByCreationTime`).
    static func idOnTime(_ id: JobID, createdAt: Int64) -> Bool {
        guard let milliseconds = id.milliseconds else { return false }
        return createdAt >= 0 && createdAt / 1000 == milliseconds
    }

    /// The `created_at` range, as `[lower, upper)` microseconds, in which a job whose ID is
    /// on time was created; an empty range for an ID that carries no time.
    static func idRange(of id: JobID) -> (lower: Int64, upper: Int64) {
        guard let milliseconds = id.milliseconds, milliseconds < Int64.max / 1000 - 1 else { return (0, 0) }
        return (milliseconds * 1000, milliseconds * 1000 + 1000)
    }

    static func firstMicros(notBefore date: Date) -> Int64 { StoredTime.firstMicros(notBefore: date) }

    static func json(_ value: JSONValue) -> String {
        var writer = JSONWriter()
        writer.value(value)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// A row of `jobs`.
    static func job(_ row: Row) throws -> JobRecord {
        let idText: String = row["id"]
        guard let id = JobID(idText), let status = JobState(rawValue: row["status"]) else {
            throw StoreError("a job row is damaged (id \(idText.prefix(40)))")
        }
        let input = (try? JSONParser.parse(Array((row["input"] as String).utf8))) ?? .null
        let result = (row["result"] as String?).flatMap { try? JSONParser.parse(Array($0.utf8)) }
        let error = (row["error_code"] as String?).map {
            JobFailure(code: $0, message: row["error_message"] ?? "", status: row["error_status"])
        }
        let idempotency = (row["idempotency_key"] as String?).map { key in
            IdempotencyRecord(key: key, fingerprint: row["idempotency_fingerprint"] ?? "",
                              expiresAt: date(row["idempotency_expires_at"] ?? 0),
                              webhookSecretGenerated: row["webhook_secret_generated"] ?? false)
        }
        let options = JobOptions(maxAttempts: row["max_attempts"], priority: row["priority"],
                                 timeLimitSeconds: row["time_limit_seconds"], idempotency: idempotency)
        let webhook = (row["webhook_url"] as String?).map { url in
            WebhookTarget(url: url, key: Array((row["webhook_key"] as Data?) ?? Data()))
        }
        return JobRecord(
            id: id, kind: row["kind"], input: input, status: status, result: result, error: error,
            createdAt: date(row["created_at"]), startedAt: (row["started_at"] as Int64?).map(date),
            finishedAt: (row["finished_at"] as Int64?).map(date), nextAttemptAt: (row["next_attempt_at"] as Int64?).map(date),
            attempt: row["attempt"], options: options, webhook: webhook, owner: row["owner"])
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
    static func storedJob(_ row: Row) throws -> StoredJob {
        let record = try job(row)
        let status: WebhookStatus? = if let url = row["event_url"] as String? {
            WebhookStatus(url: url, state: WebhookState(rawValue: row["event_state"]) ?? .pending, attempts: row["event_attempts"])
        } else {
            record.webhook.map { WebhookStatus(url: $0.url, state: .pending, attempts: 0) }
        }
        return StoredJob(record: record, webhookStatus: status)
    }

    /// A row of `webhook_attempts`.
    static func deliveryAttempt(_ row: Row) -> DeliveryAttempt {
        let error: JobFailure? = (row["error_code"] as String?).map { JobFailure(code: $0, message: row["error_message"] ?? "") }
        return DeliveryAttempt(
            number: row["number"], startedAt: date(row["started_at"]), duration: .microseconds(row["duration_us"] as Int64),
            status: row["status"], error: error, nextAttemptAt: (row["next_attempt_at"] as Int64?).map(date))
    }

    /// A row of `webhook_events` with the job's secret as `webhook_key`.
    static func webhookEvent(_ row: Row, attempts: [DeliveryAttempt]) throws -> WebhookEventRecord {
        let jobID: String = row["job_id"]
        guard let id = JobID(jobID) else { throw StoreError("a webhook event row is damaged (job id \(jobID.prefix(40)))") }
        return WebhookEventRecord(
            jobID: id, webhookID: row["webhook_id"], url: row["url"], key: Array((row["webhook_key"] as Data?) ?? Data()),
            body: Array(row["body"] as Data), state: WebhookState(rawValue: row["state"]) ?? .pending,
            attempts: attempts, roundStart: row["round_start"], nextAttemptAt: (row["next_attempt_at"] as Int64?).map(date))
    }
}
