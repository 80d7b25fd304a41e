import Foundation
import GRDB
import JobCore

extension SQLiteJobStore {
    /// Reads every job in `(created_at, id)` order, and every webhook event with its attempts.
    public func load() throws(StoreError) -> StoredState {
        do {
            return try database.read { db in
                var jobs: [JobRecord] = []
                let rows = try Row.fetchCursor(db, sql: "SELECT * FROM jobs ORDER BY created_at, id")
                while let row = try rows.next() { jobs.append(try Self.job(row)) }

                var attempts: [String: [DeliveryAttempt]] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT * FROM webhook_attempts ORDER BY job_id, number") {
                    let error: JobFailure? = (row["error_code"] as String?).map {
                        JobFailure(code: $0, message: row["error_message"] ?? "")
                    }
                    let attempt = DeliveryAttempt(
                        number: row["number"], startedAt: Self.date(row["started_at"]),
                        duration: .microseconds(row["duration_us"] as Int64), status: row["status"], error: error,
                        nextAttemptAt: (row["next_attempt_at"] as Int64?).map(Self.date))
                    attempts[row["job_id"], default: []].append(attempt)
                }
                let keys = Dictionary(jobs.compactMap { job in job.webhook.map { (job.id.description, $0.key) } },
                                      uniquingKeysWith: { first, _ in first })
                var events: [WebhookEventRecord] = []
                for row in try Row.fetchAll(db, sql: "SELECT * FROM webhook_events") {
                    let jobID: String = row["job_id"]
                    guard let id = JobID(jobID) else { continue }
                    events.append(WebhookEventRecord(
                        jobID: id, webhookID: row["webhook_id"], url: row["url"], key: keys[jobID] ?? [],
                        body: Array(row["body"] as Data), state: WebhookState(rawValue: row["state"]) ?? .pending,
                        attempts: attempts[jobID] ?? [], roundStart: row["round_start"],
                        nextAttemptAt: (row["next_attempt_at"] as Int64?).map(Self.date)))
                }
                return StoredState(jobs: jobs, webhookEvents: events)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot read the job store: \(Self.describe(error, path: path))")
        }
    }

    private static func job(_ row: Row) throws -> JobRecord {
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
}
