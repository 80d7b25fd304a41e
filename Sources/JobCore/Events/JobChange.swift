import Foundation

/// One visible change of a job, as the live event stream (`GET /v1/events`) tells it.
///
/// It holds the job itself rather than a snapshot: taking a snapshot costs the job's lock and
/// a copy on the worker's thread, and most changes are never rendered (no stream watches, or
/// none of the watching streams wants them). The renderer reads what it needs later, once.
public struct JobChange: Sendable {
    /// What happened. The raw value is the event's name on the stream.
    public enum Event: String, Sendable, CaseIterable {
        /// Accepted (and durable): the job is `queued`, or `scheduled` for later.
        case created = "job.created"
        /// A scheduled job (or a retry) fell due and waits for a worker.
        case queued = "job.queued"
        /// A worker took it: `running`.
        case started = "job.started"
        /// An attempt failed in a retryable way; the job is `scheduled` for its next attempt.
        case retried = "job.retried"
        case succeeded = "job.succeeded"
        case failed = "job.failed"
        case cancelled = "job.cancelled"
        /// The job's completion webhook was delivered (a 2xx answer).
        case webhookDelivered = "webhook.delivered"
        /// The job's completion webhook ran out of attempts (or found the backlog full).
        case webhookFailed = "webhook.failed"

        /// The event for a change of state, or nil for none worth telling.
        init?(from: JobState, to: JobState) {
            switch to {
            case .scheduled: if from == .running { self = .retried } else { return nil }
            case .queued: self = .queued
            case .running: self = .started
            case .succeeded: self = .succeeded
            case .failed: self = .failed
            case .cancelled: self = .cancelled
            }
        }
    }

    public let job: Job
    public let event: Event
    /// The job's state right after the change.
    public let status: JobState
    public let at: Date
}
