import Foundation
import JobCore
import Webhooks

extension JSONWriter {
    /// A job as the API shows it: the same fields, in the same order, for every job; absent
    /// values are explicit nulls.
    mutating func job(_ job: JobSnapshot, revealingSecret secret: String? = nil) {
        object { members in
            members.member("id") { $0.string(job.id.description) }
            members.member("kind") { $0.string(job.kind) }
            members.member("status") { $0.string(job.status.rawValue) }
            members.member("input") { $0.value(job.input) }
            members.member("result") { writer in
                if let result = job.result { writer.value(result) } else { writer.null() }
            }
            members.member("error") { $0.failure(job.error) }
            members.member("last_error") { $0.failure(job.lastError) }
            members.member("created_at") { $0.timestamp(job.createdAt) }
            members.member("started_at") { $0.optionalTimestamp(job.startedAt) }
            members.member("finished_at") { $0.optionalTimestamp(job.finishedAt) }
            members.member("next_attempt_at") { $0.optionalTimestamp(job.nextAttemptAt) }
            members.member("attempt") { $0.integer(job.attempt) }
            members.member("max_attempts") { $0.integer(job.maxAttempts) }
            members.member("priority") { $0.integer(job.priority) }
            members.member("time_limit_seconds") { writer in
                if let limit = job.timeLimitSeconds { writer.number(limit) } else { writer.null() }
            }
            members.member("webhook") { writer in
                guard let webhook = job.webhook else { return writer.null() }
                writer.object { fields in
                    fields.member("url") { $0.string(webhook.url) }
                    fields.member("state") { $0.string(webhook.state.rawValue) }
                    fields.member("attempts") { $0.integer(webhook.attempts) }
                    if let secret { fields.member("secret") { $0.string(secret) } }
                }
            }
            if job.cancelRequested { members.member("cancel_requested") { $0.bool(true) } }
        }
    }

    /// `{"code", "message"}`, or null.
    mutating func failure(_ failure: JobFailure?) {
        guard let failure else { return null() }
        object { fields in
            fields.member("code") { $0.string(failure.code) }
            fields.member("message") { $0.string(failure.message) }
            if let status = failure.status { fields.member("status") { $0.integer(status) } }
        }
    }

    /// A webhook event body: `{"type": "job.succeeded", "timestamp": ..., "data": <the job>}`.
    mutating func webhookEvent(type: String, job: JobSnapshot) {
        object { members in
            members.member("type") { $0.string(type) }
            members.member("timestamp") { $0.timestamp(Date()) }
            members.member("data") { $0.job(job) }
        }
    }

    /// `GET /v1/jobs/{id}/deliveries`.
    mutating func deliveries(_ report: DeliveryReport?, webhook: WebhookStatus) {
        object { members in
            members.member("webhook_id") { $0.optionalString(report?.webhookID) }
            members.member("url") { $0.string(webhook.url) }
            members.member("state") { $0.string(webhook.state.rawValue) }
            members.member("deliveries") {
                $0.array(report?.attempts ?? []) { writer, attempt in
                    writer.object { fields in
                        fields.member("attempt") { $0.integer(attempt.number) }
                        fields.member("started_at") { $0.timestamp(attempt.startedAt) }
                        fields.member("duration_ms") {
                            $0.integer(Int(attempt.duration.clampedMilliseconds))
                        }
                        fields.member("status") { writer in
                            if let status = attempt.status { writer.integer(status) } else { writer.null() }
                        }
                        fields.member("error") { $0.failure(attempt.error) }
                        fields.member("next_attempt_at") { $0.optionalTimestamp(attempt.nextAttemptAt) }
                    }
                }
            }
        }
    }

    /// A page of `GET /v1/jobs`.
    mutating func jobList(_ page: JobPage) {
        object { members in
            members.member("jobs") { $0.array(page.jobs) { writer, job in writer.job(job) } }
            members.member("next_cursor") { $0.optionalString(page.nextCursor.map(ListCursor.encode)) }
        }
    }

    /// An RFC 9457 problem document.
    mutating func problem(_ problem: Problem) {
        object { members in
            members.member("type") { $0.string(problem.type) }
            members.member("title") { $0.string(problem.title) }
            members.member("status") { $0.integer(problem.status) }
            members.member("detail") { $0.string(problem.detail) }
            if let instance = problem.instance { members.member("instance") { $0.string(instance) } }
            if let errors = problem.errors {
                members.member("errors") {
                    $0.array(errors) { writer, error in
                        writer.object { fields in
                            if let pointer = error.pointer { fields.member("pointer") { $0.string(pointer) } }
                            if let parameter = error.parameter { fields.member("parameter") { $0.string(parameter) } }
                            if let header = error.header { fields.member("header") { $0.string(header) } }
                            if let index = error.index { fields.member("index") { $0.integer(index) } }
                            fields.member("detail") { $0.string(error.detail) }
                        }
                    }
                }
            }
        }
    }
}
