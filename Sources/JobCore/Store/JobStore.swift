import Foundation

/// Where jobs are kept, and what answers questions about them: the source of truth.
///
/// Memory holds only live work (queued, scheduled and running jobs) and a bounded cache of
/// recent ones; a finished job that has left the cache is read from here. The executor writes
/// in ``StoreChange``s and reads through the queries below; how they are stored (SQL, or
/// tables in memory) is the store's business, so neither the core nor the HTTP layer sees SQL.
///
/// The queries block: call them off the event loop (``StoreReader`` runs them on its threads).
public protocol JobStore: Sendable {
    /// False for a store that does not outlive the process (`--store memory`).
    var isDurable: Bool { get }

    /// Records `change`. `whenDurable` runs once it is committed and synced, or with the
    /// failure if it could not be written, or with a ``StoreError/isStale`` error if a shared
    /// store found the attempt it is about no longer this node's (nothing changed). Changes
    /// are applied in the order given.
    /// A submission that fails is dropped; any other change is retried until it is written.
    func apply(_ change: StoreChange, whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?)

    /// Records newly submitted jobs: `.submitted` with their records, unless the store keeps
    /// jobs in this process's memory, where it may hold the objects themselves (see
    /// ``holdsJobs``).
    func submit(_ jobs: [Job], whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?)

    /// True for a store that holds the submitted ``Job`` objects themselves (`--store memory`):
    /// it answers from them, so the executor keeps no second copy of a finished job in its
    /// cache, and a job read back is the same object.
    var holdsJobs: Bool { get }

    /// The job object this store holds, if it holds objects (see ``holdsJobs``). Never blocks
    /// for long: a table lookup.
    func heldJob(withID id: JobID) -> Job?

    /// Takes back the work that a previous owner of this store left running (it died, or was
    /// killed): each running attempt is recorded as interrupted and its job goes back to the
    /// queue as its next attempt, all in one write, at start, while this process holds the
    /// store. Jobs with no attempt left stay `running`, for the executor to fail with
    /// `interrupted` (their final state carries a webhook event, which the executor makes).
    /// Returns how many were re-queued.
    func requeueInterrupted(at now: Date) throws(StoreError) -> Int

    /// What a start needs, and nothing more: the jobs that are not finished (queued, scheduled,
    /// running), in `(created_at, id)` order, the webhook events still pending (a store shared
    /// by several nodes: only those this node holds, see ``claimWebhookEvents(limit:)``), and
    /// the counts of all stored jobs. Never every finished job.
    func loadUnfinished() throws(StoreError) -> StoredState

    /// The job with this ID.
    func job(withID id: JobID) throws(StoreError) -> StoredJob?

    /// The jobs with these IDs that exist, in no particular order: one read for the many jobs
    /// a node watches on others' behalf (see ``JobExecutor``'s remote handles).
    func jobs(withIDs ids: [JobID]) throws(StoreError) -> [StoredJob]

    /// Up to `limit` jobs matching `filter`, newest first, strictly after `cursor` in
    /// `(created_at, id)` order (descending).
    func jobs(matching filter: JobFilter, limit: Int, after cursor: JobCursor?) throws(StoreError) -> [StoredJob]

    /// The job an unexpired idempotency key of this owner created.
    func job(idempotencyKey key: String, owner: String?, now: Date) throws(StoreError) -> StoredJob?

    /// The job's webhook event with its delivery attempts, if it has one.
    func webhookEvent(of id: JobID) throws(StoreError) -> WebhookEventRecord?

    /// Up to `limit` jobs that finished before `cutoff` and whose webhook (if any) is no longer
    /// pending, oldest finished first: what retention may delete.
    func expiredJobs(finishedBefore cutoff: Date, limit: Int) throws(StoreError) -> [StoredJobSummary]

    /// Deletes up to `limit` expired jobs and returns them (retention; see WebhookClaims.swift
    /// for the default, which a shared store replaces to run on one node at a time).
    func purgeExpired(finishedBefore cutoff: Date, limit: Int) throws(StoreError) -> [StoredJobSummary]

    /// Claims pending webhook events for this node (a shared store; see WebhookClaims.swift).
    func claimWebhookEvents(limit: Int) throws(StoreError) -> [WebhookEventRecord]

    /// Gives back claimed events this node could not hand to its deliverer (see WebhookClaims.swift).
    func releaseWebhookEvents(_ ids: [JobID]) throws(StoreError)

    /// The name under which this node holds its webhook events (see WebhookClaims.swift).
    var webhookClaimant: String? { get }

    /// The due work this store hands out: the worker pool claims jobs here and nowhere else.
    /// A store one process owns keeps it in memory (``LocalWorkQueue``); see ``WorkQueue``.
    var workQueue: any WorkQueue { get }

    /// True while writes succeed (readiness).
    var isWritable: Bool { get }

    /// This node's place in a cluster sharing the store, or nil (see ``ClusterMembership``).
    var cluster: ClusterMembership? { get }

    /// The whole cluster's jobs by owner, kind and state, read from the store; nil for a store
    /// one process owns, whose counters in memory see every job (``JobExecutor/counts``).
    func clusterCounts() throws(StoreError) -> [JobCounts.Key: Int]?

    /// Non-nil when the store logs every job change with a cluster-wide event ID and tells
    /// them through ``connect(_:)`` (PostgreSQL): the newest event this node has read (before
    /// ``start()``, the log's end). The event stream then serves those events, not the changes
    /// made in this process. Nil for a store one process owns.
    var eventLogPosition: Int? { get }

    /// Deletes up to `limit` logged events older than `cutoff` (retention); returns how many.
    func purgeEvents(before cutoff: Date, limit: Int) throws(StoreError) -> Int

    /// Connects this node to what the other nodes sharing the store do: cancels asked for on
    /// them, and every job event. Call before ``start()``. A store one process owns does nothing.
    func connect(_ feed: ClusterFeed)

    /// Starts the store's own threads (a writer, say); no store starts one in its `init`.
    /// Changes applied before are kept in order and written once it runs.
    func start()

    /// Writes what is queued, then closes.
    func close()
}

/// A job as the store answers it: its record and its webhook's delivery state.
public struct StoredJob: Sendable, Equatable {
    public var record: JobRecord
    public var webhookStatus: WebhookStatus?

    public init(record: JobRecord, webhookStatus: WebhookStatus?) {
        self.record = record
        self.webhookStatus = webhookStatus
    }
}

/// Enough of a job to delete it and keep the counts right.
public struct StoredJobSummary: Sendable, Hashable {
    public var key: JobKey
    public var owner: String?
    public var kind: String
    public var status: JobState

    public init(key: JobKey, owner: String?, kind: String, status: JobState) {
        self.key = key
        self.owner = owner
        self.kind = kind
        self.status = status
    }
}

/// What a start reads from the store: the unfinished jobs, the pending webhook events, and the
/// counts of every stored job by owner, kind and state (kept by the store as it writes).
public struct StoredState: Sendable {
    public var jobs: [JobRecord]
    public var webhookEvents: [WebhookEventRecord]
    public var counts: [JobCounts.Key: Int]

    public init(jobs: [JobRecord] = [], webhookEvents: [WebhookEventRecord] = [], counts: [JobCounts.Key: Int] = [:]) {
        self.jobs = jobs
        self.webhookEvents = webhookEvents
        self.counts = counts
    }
}

/// Why the store could not do something, in words an operator can act on.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// Set when the store refused a submission because the queue, or the owner's share of it,
    /// is full: a store shared by several nodes checks the queue limits itself (see
    /// ``WorkQueueHost/maxQueued``), in the submission's transaction.
    public var queueLimit: PoolError?
    /// True for a write about an attempt that is no longer this node's (a shared store fences
    /// every write about a running job): nothing changed, and the writer must announce nothing.
    public var isStale: Bool
    /// True when a submission was refused because its idempotency key already names a job:
    /// one that another request with the same key (on another node, with a shared store)
    /// stored at the same moment. That job exists now; the submitter can answer with it.
    public var isIdempotencyKeyTaken: Bool
    public init(_ message: String, queueLimit: PoolError? = nil, isStale: Bool = false, isIdempotencyKeyTaken: Bool = false) {
        self.message = message
        self.queueLimit = queueLimit
        self.isStale = isStale
        self.isIdempotencyKeyTaken = isIdempotencyKeyTaken
    }
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
    /// How the store names this job.
    public var key: JobKey { JobKey(id: id, createdAt: createdAt) }

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
    /// attempt is newer (a stale attempt). `owner` and `kind` are the job's, which a store that
    /// counts finished jobs counts it under, so that it need not read them back.
    case finished(JobKey, attempt: Int, startedAt: Date?, status: JobState, result: JSONValue?, error: JobFailure?,
                  at: Date, event: WebhookEventRecord?, owner: String?, kind: String)
    /// `attempt` failed in a way worth retrying (`error`); the job waits, `scheduled`, until
    /// `nextAttemptAt` to run as `attempt + 1`.
    case retrying(JobKey, attempt: Int, startedAt: Date, error: JobFailure, at: Date, nextAttemptAt: Date)
    /// The job goes back to the queue as `attempt`. After a crash, `interrupted` is the attempt
    /// that was running, recorded as such; after a drain it is nil (that run does not count).
    case requeued(JobKey, attempt: Int, interrupted: (attempt: Int, startedAt: Date)?)
    /// A webhook attempt was made; the event's state and next attempt after it.
    case webhookAttempted(JobID, attempt: DeliveryAttempt, state: WebhookState, nextAttemptAt: Date?)
    /// A redelivery started a new round of attempts. A shared store also claims the event for
    /// this node in the same write, so that its attempts go out under a committed claim.
    case webhookRedelivered(JobID, roundStart: Int)
    /// The body of an event that was made without one (a shared store's rescue fails jobs in
    /// SQL, where the HTTP layer's renderer is not at hand): rendered by the node that claimed
    /// it, and frozen from now on. Ignored if the event has a body already.
    case webhookRendered(JobID, body: [UInt8])
    /// Finished jobs removed by retention.
    case purged([JobKey])
    /// A client asked this node to cancel a job that runs (or waits) on another node sharing
    /// the store: recorded, so that it survives, and told to the other nodes. Only a shared
    /// store is sent this.
    case cancelRequested(JobKey, at: Date)
}

extension JobStore {
    public func submit(_ jobs: [Job], whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        apply(.submitted(jobs.map { $0.record() }), whenDurable: whenDurable)
    }

    public var holdsJobs: Bool { false }

    public func heldJob(withID id: JobID) -> Job? { nil }

    public func clusterCounts() throws(StoreError) -> [JobCounts.Key: Int]? { nil }

    /// One read per job: enough for a store that only this process uses, which watches no job
    /// for another node.
    public func jobs(withIDs ids: [JobID]) throws(StoreError) -> [StoredJob] {
        var found: [StoredJob] = []
        for id in ids {
            if let job = try job(withID: id) { found.append(job) }
        }
        return found
    }
}
