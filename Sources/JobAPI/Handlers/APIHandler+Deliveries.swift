import EventHTTP
import JobCore
import Webhooks

extension APIHandler {
    /// `GET /v1/jobs/{id}/deliveries`: every attempt to deliver the job's webhook.
    func listDeliveries(_ request: HTTPRequest, id: String, owner: String?) throws(Problem) {
        try withJob(request, id: id, owner: owner) { handler, request, job throws(Problem) in
            guard let webhook = job.snapshot().webhook else { throw Self.noWebhook(job.id) }
            if let report = handler.webhooks.report(jobID: job.id) {
                handler.respond(request, status: 200) { $0.deliveries(report, webhook: webhook) }
                return
            }
            // The deliverer keeps records of recent events only; the store has them all.
            handler.readStore(request, { [id = job.id] executor throws(StoreError) in try executor.storedWebhookEvent(of: id) }) { handler, request, event in
                let report = event.map { DeliveryReport(webhookID: $0.webhookID, state: $0.state, attempts: $0.attempts) }
                handler.respond(request, status: 200) { $0.deliveries(report, webhook: webhook) }
            }
        }
    }

    /// `POST /v1/jobs/{id}/deliveries/redeliver`: sends the job's event again, with the same
    /// `webhook-id` and body.
    func redeliver(_ request: HTTPRequest, id: String, owner: String?) throws(Problem) {
        try withJob(request, id: id, owner: owner) { handler, request, job throws(Problem) in
            guard job.webhook != nil else { throw Self.noWebhook(job.id) }
            guard job.isFinished, handler.webhooks.report(jobID: job.id) == nil else {
                try handler.redeliver(job, request: request)
                return
            }
            // An event the deliverer no longer holds (an older job, one from before a restart,
            // or one another node holds): take its record back from the store, then send it
            // again. Not on its old schedule: a pending event may be another node's until the
            // redelivery moves it here. An event the rescue made may have no body yet: the one
            // rendered here is stored, unless another node stored one first, which is sent.
            handler.readStore(request, { [id = job.id, webhooks = handler.webhooks] executor throws(StoreError) -> WebhookEventRecord? in
                guard var event = try executor.storedWebhookEvent(of: id) else { return nil }
                guard event.body.isEmpty else { return event }
                guard let body = try executor.fillWebhookBody(of: id, with: webhooks.makeEvent(for: job, final: job.snapshot()).body) else {
                    throw StoreError("the job's webhook event could not be rendered and stored")
                }
                event.body = body
                return event
            }) { handler, request, event throws(Problem) in
                if let event { handler.webhooks.restore([event], schedulePending: false) { _ in job } }
                try handler.redeliver(job, request: request)
            }
        }
    }

    /// How long a redelivery's answer waits for its write: a store that loses its database
    /// retries the write until it is back, and the client is not kept waiting that long.
    static let redeliveryWait: Duration = .seconds(10)

    /// The one answer a redelivery gets: once stored, or at ``redeliveryWait``. Loop thread only.
    private final class RedeliveryAnswer {
        var isGiven = false
        var timer: LoopTimer?
    }

    /// Answers `202` once the redelivery is stored, as a submission is (a store that cannot be
    /// written answers `503` at once rather than keeping the client waiting for it, and one
    /// that has not stored it within ``redeliveryWait`` answers `503` then).
    private func redeliver(_ job: Job, request: HTTPRequest) throws(Problem) {
        guard executor.isStoreWritable else {
            throw Problem.storeUnavailable("The job store cannot be written now, so the redelivery was not queued. Retry after the Retry-After delay.")
        }
        let answer = RedeliveryAnswer()
        let pending = LoopBound((handler: self, request: request, answer: answer), on: loop)
        let loop = self.loop
        let outcome = webhooks.redeliver(jobID: job.id) { stored in
            loop.execute {
                let (handler, request, answer) = pending.value
                guard !answer.isGiven else { return }
                answer.isGiven = true
                answer.timer?.cancel()
                guard stored else { return handler.respond(request, problem: Self.redeliveryNotStored(job.id)) }
                handler.respond(request, status: 202, current: job)
            }
        }
        switch outcome {
        case .queued:
            // Answered once stored (the closure above runs on this loop, after this returns).
            answer.timer = loop.schedule(after: Self.redeliveryWait) { [unowned self] in
                guard !answer.isGiven else { return }
                answer.isGiven = true
                respond(request, problem: Self.redeliveryNotConfirmed(job.id))
            }
        case .alreadyQueued:
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

    private static func redeliveryNotStored(_ id: JobID) -> Problem {
        Problem("redelivery-not-stored", title: "Redelivery not stored", status: 503,
                detail: "The redelivery of job \(id)'s webhook could not be stored (this server lost its place in the cluster for a moment, or the job was deleted meanwhile), so nothing will be sent. Retry after the Retry-After delay.",
                headers: [("Retry-After", "1")])
    }

    private static func redeliveryNotConfirmed(_ id: JobID) -> Problem {
        Problem("redelivery-not-confirmed", title: "Redelivery not yet stored", status: 503,
                detail: "The redelivery of job \(id)'s webhook was not stored within \(redeliveryWait.components.seconds) s (the job store is slow or unreachable). It may still be stored and sent: look at GET /v1/jobs/\(id)/deliveries before retrying.",
                headers: [("Retry-After", "5")])
    }

    private static func noWebhook(_ id: JobID) -> Problem {
        Problem("no-webhook", title: "Job has no webhook", status: 409,
                detail: "Job \(id) was submitted without a webhook. Add \"webhook\": {\"url\": ...} when submitting to get one.")
    }
}
