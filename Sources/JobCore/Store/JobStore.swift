import Foundation

/// Where jobs are kept so that they outlive the process. The executor speaks to it in
/// ``StoreChange``s; how they are stored (SQL or nothing) is the store's business, so neither the
/// core nor the HTTP layer sees SQL.
public protocol JobStore: Sendable {
    /// False for a store that keeps nothing (`--store memory`).
    var isDurable: Bool { get }

    /// Records `change`. `whenDurable` runs once it is committed and synced, or with the
    /// failure if it could not be written. Changes are applied in the order given.
    /// A submission that fails is dropped; any other change is retried until it is written.
    func apply(_ change: StoreChange, whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?)

    /// Everything stored, for recovery at start: jobs in `(created_at, id)` order, and the
    /// webhook events that are not delivered or failed for good.
    func load() throws(StoreError) -> StoredState

    /// True while writes succeed (readiness).
    var isWritable: Bool { get }

    /// Writes what is queued, then closes.
    func close()
}

/// What the store holds.
public struct StoredState: Sendable {
    public var jobs: [JobRecord]
    public var webhookEvents: [WebhookEventRecord]

    public init(jobs: [JobRecord] = [], webhookEvents: [WebhookEventRecord] = []) {
        self.jobs = jobs
        self.webhookEvents = webhookEvents
    }
}

/// Why the store could not do something, in words an operator can act on.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One job as stored.
public struct JobRecord: Sendable, Equatable {
    public var id: JobID
    public var kind: String
    public var input: JSONValue
    public var status: JobState
    public var result: JSONValue?
    /// The final error, or while `scheduled` for a retry, the last attempt's.
    public var error: JobFailure?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// When a scheduled job falls due.
    public var nextAttemptAt: Date?
    /// The current attempt, from 1.
    public var attempt: Int
    public var options: JobOptions
    public var webhook: WebhookTarget?
    public var owner: String?

    public var maxAttempts: Int { options.maxAttempts }

    public init(id: JobID, kind: String, input: JSONValue, status: JobState, result: JSONValue? = nil,
                error: JobFailure? = nil, createdAt: Date, startedAt: Date? = nil, finishedAt: Date? = nil,
                nextAttemptAt: Date? = nil, attempt: Int = 1, options: JobOptions = JobOptions(),
                webhook: WebhookTarget? = nil, owner: String? = nil) {
        self.owner = owner
        self.id = id
        self.kind = kind
        self.input = input
        self.status = status
        self.result = result
        self.error = error
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.nextAttemptAt = nextAttemptAt
        self.attempt = attempt
        self.options = options
        self.webhook = webhook
    }
}

/// Names a stored job. Its creation time is part of the key: jobs are stored in creation
/// order, so that writing a new job appends instead of landing at a random place.
public struct JobKey: Sendable, Hashable {
    public var id: JobID
    public var createdAt: Date

    public init(id: JobID, createdAt: Date) {
        self.id = id
        self.createdAt = createdAt
    }
}

/// A change to what is stored.
public enum StoreChange: Sendable {
    /// New jobs (queued or scheduled), all or none. Acknowledged to the client only once durable.
    case submitted([JobRecord])
    /// A worker started `attempt` of the job.
    case started(JobKey, attempt: Int, at: Date)
    /// The job reached a final state in `attempt` (started at `startedAt`, if it ran); `event` is
    /// its webhook event (the outbox row), written in the same transaction. Ignored if the stored
    /// attempt is newer (a stale attempt).
    case finished(JobKey, attempt: Int, startedAt: Date?, status: JobState, result: JSONValue?, error: JobFailure?,
                  at: Date, event: WebhookEventRecord?)
    /// `attempt` failed in a way worth retrying (`error`); the job waits, `scheduled`, until
    /// `nextAttemptAt` to run as `attempt + 1`.
    case retrying(JobKey, attempt: Int, startedAt: Date, error: JobFailure, at: Date, nextAttemptAt: Date)
    /// The job goes back to the queue as `attempt`. After a crash, `interrupted` is the attempt
    /// that was running, recorded as such; after a drain it is nil (that run does not count).
    case requeued(JobKey, attempt: Int, interrupted: (attempt: Int, startedAt: Date)?)
    /// A webhook attempt was made; the event's state and next attempt after it.
    case webhookAttempted(JobID, attempt: DeliveryAttempt, state: WebhookState, nextAttemptAt: Date?)
    /// A redelivery started a new round of attempts.
    case webhookRedelivered(JobID, roundStart: Int)
    /// Finished jobs removed by retention.
    case purged([JobKey])
}

/// The store for `--store memory`: keeps nothing, answers at once.
public struct MemoryStore: JobStore {
    public init() {}
    public var isDurable: Bool { false }
    public var isWritable: Bool { true }
    public func apply(_ change: StoreChange, whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        whenDurable?(.success(()))
    }
    public func load() throws(StoreError) -> StoredState { StoredState() }
    public func close() {}
}
