import EventHTTP
import JobCore
import Webhooks

extension APIHandler {
    /// `GET /v1/jobs/{id}/deliveries`: every attempt to deliver the job's webhook.
    func listDeliveries(_ request: HTTPRequest, id: String, owner: String?) throws(Problem) {
        let job = try existingJob(id, owner: owner)
        guard let webhook = job.snapshot().webhook else { throw Self.noWebhook(job.id) }
        let report = webhooks.report(jobID: job.id)
        respond(request, status: 200) { $0.deliveries(report, webhook: webhook) }
    }

    /// `POST /v1/jobs/{id}/deliveries/redeliver`: sends the job's event again, with the same
    /// `webhook-id` and body.
    func redeliver(_ request: HTTPRequest, id: String, owner: String?) throws(Problem) {
        let job = try existingJob(id, owner: owner)
        guard job.webhook != nil else { throw Self.noWebhook(job.id) }
        switch webhooks.redeliver(jobID: job.id) {
        case .queued:
            respond(request, status: 202, current: job)
        case .noEvent:
            throw Problem("job-not-finished", title: "Job not finished", status: 409,
                          detail: "Job \(job.id) has not finished, so it has no event to deliver yet; its webhook fires when it does.")
        case .backlogFull:
            throw Problem("webhook-backlog-full", title: "Webhook backlog full", status: 503,
                          detail: "Too many webhook deliveries are waiting. Retry after the Retry-After delay.",
                          headers: [("Retry-After", "30")])
        }
    }

    private static func noWebhook(_ id: JobID) -> Problem {
        Problem("no-webhook", title: "Job has no webhook", status: 409,
                detail: "Job \(id) was submitted without a webhook. Add \"webhook\": {\"url\": ...} when submitting to get one.")
    }
}
