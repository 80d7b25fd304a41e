import Foundation
import JobCore

/// A job change as the replay window keeps it: what the event shows and what filters read,
/// copied from the job when the change reaches the window. The window holds no `Job`, so a
/// finished job's input and result are not kept alive by the last 50,000 events.
struct RecordedChange {
    let jobID: JobID
    let kind: String
    let owner: String?
    let event: JobChange.Event
    /// The job's state right after the change.
    let status: JobState
    let at: Date
    let attempt: Int
    let maxAttempts: Int
    /// The final error (failed, cancelled), or the failed attempt's (retried).
    let error: JobFailure?
    /// The webhook's delivery state (webhook delivered or failed).
    let webhook: WebhookStatus?

    init(_ change: JobChange) {
        let job = change.job
        let details = job.eventDetails()
        jobID = job.id
        kind = job.kind
        owner = job.owner
        event = change.event
        status = change.status
        at = change.at
        attempt = details.attempt
        maxAttempts = job.maxAttempts
        switch change.event {
        case .failed, .cancelled: error = details.error
        case .retried: error = details.status == .scheduled ? details.lastError : nil
        default: error = nil
        }
        webhook = change.event == .webhookDelivered || change.event == .webhookFailed ? details.webhook : nil
    }

    /// A change read from the store's event log (PostgreSQL): it carries what the event shows.
    init(_ stored: StoredJobEvent) {
        jobID = stored.jobID
        kind = stored.kind
        owner = stored.owner
        event = stored.event
        status = stored.status
        at = stored.at
        attempt = stored.attempt
        maxAttempts = stored.maxAttempts
        error = stored.error
        webhook = stored.webhook
    }
}
