import Foundation

/// A job as it stands at one moment: what the API shows and what done-callbacks receive.
public struct JobSnapshot: Sendable, Hashable {
    public var id: JobID
    public var kind: String
    public var status: JobState
    public var input: JSONValue
    public var result: JSONValue?
    public var error: JobFailure?
    /// The failure of the previous attempt while the job waits to retry.
    public var lastError: JobFailure?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// When a `scheduled` job falls due (its `run_at`, or the end of a retry's backoff).
    public var nextAttemptAt: Date?
    /// True once a cancel was asked for a running job that has not stopped yet.
    public var cancelRequested: Bool
    /// The completion webhook's delivery state, if the job has one.
    public var webhook: WebhookStatus?
    /// This run's attempt number, from 1, and the attempts allowed.
    public var attempt: Int
    public var maxAttempts: Int
    public var priority: Int
    public var timeLimitSeconds: Double?
    /// Changes whenever anything above changes; equal versions of one job mean equal snapshots.
    public var version: Int

    /// Numbers the job's state changes in order, the same way in every process that loads
    /// the job: later states of a job always have larger numbers. Used as SSE event IDs.
    public var stateSequence: Int { attempt * 10 + status.orderWithinAttempt }
}

extension JobSnapshot {
    /// A stored job as it would show if loaded as a handle (see `Job(restoring:)`).
    public init(stored: StoredJob) {
        let record = stored.record
        let finished = record.status.isFinished
        self.init(id: record.id, kind: record.kind, status: record.status, input: record.input, result: record.result,
                  error: finished ? record.error : nil, lastError: record.status == .scheduled ? record.error : nil,
                  createdAt: record.createdAt, startedAt: finished || record.status == .running ? record.startedAt : nil,
                  finishedAt: record.finishedAt, nextAttemptAt: record.status == .scheduled ? record.nextAttemptAt : nil,
                  cancelRequested: false, webhook: stored.webhookStatus, attempt: record.attempt,
                  maxAttempts: record.options.maxAttempts, priority: record.options.priority,
                  timeLimitSeconds: record.options.timeLimitSeconds, version: 0)
    }
}
