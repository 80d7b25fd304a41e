import Foundation

/// A job as it stands at one moment: what the API shows and what done-callbacks receive.
public struct JobSnapshot: Sendable, Hashable {
    public var id: JobID
    public var kind: String
    public var status: JobState
    public var input: JSONValue
    public var result: JSONValue?
    public var error: JobFailure?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// True once a cancel was asked for a running job that has not stopped yet.
    public var cancelRequested: Bool
    /// The completion webhook's delivery state, if the job has one.
    public var webhook: WebhookStatus?
    /// This run's attempt number, from 1, and the attempts allowed.
    public var attempt: Int
    public var maxAttempts: Int
    /// Changes whenever anything above changes; equal versions of one job mean equal snapshots.
    public var version: Int
}
