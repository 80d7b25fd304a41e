import Foundation

/// A job change as a store shared by several nodes logs it (PostgreSQL's `job_events`), in
/// the transaction that made it: whichever node made the change, every node reads the same
/// events, with the same IDs, in the same order. Those IDs are the event stream's global
/// `Last-Event-ID` there.
public struct StoredJobEvent: Sendable, Equatable {
    /// Increasing, unique across the cluster; not necessarily consecutive.
    public var id: Int
    public var jobID: JobID
    public var kind: String
    public var owner: String?
    public var event: JobChange.Event
    /// The job's state right after the change.
    public var status: JobState
    public var at: Date
    public var attempt: Int
    public var maxAttempts: Int
    /// The final error (failed, cancelled), or the failed attempt's (retried).
    public var error: JobFailure?
    /// The webhook's delivery state (webhook delivered or failed).
    public var webhook: WebhookStatus?

    public init(id: Int, jobID: JobID, kind: String, owner: String?, event: JobChange.Event, status: JobState, at: Date,
                attempt: Int, maxAttempts: Int, error: JobFailure? = nil, webhook: WebhookStatus? = nil) {
        self.id = id
        self.jobID = jobID
        self.kind = kind
        self.owner = owner
        self.event = event
        self.status = status
        self.at = at
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.error = error
        self.webhook = webhook
    }
}

/// What a store shared by several nodes tells this node about work done anywhere in the
/// cluster (see ``JobStore/connect(_:)``). Both run on the store's listener thread.
public struct ClusterFeed: Sendable {
    /// A client asked (on any node) to cancel these jobs: cancel those that run, or wait, here.
    /// Told at once by a notification, and again by the ~1 s poll while the request is open, so
    /// a job may be named more than once.
    public var cancelsRequested: @Sendable ([JobID]) -> Void
    /// Job events committed by any node, in ID order, each exactly once.
    public var jobEvents: @Sendable ([StoredJobEvent]) -> Void
    /// The log is held back (a transaction still open below committed events): the jobs this
    /// node watches are to be read again from the store, not waited on through the log.
    public var watchedJobsMayHaveChanged: @Sendable () -> Void
    /// What this node needs of the log now (see ``EventLogNeed``). While it needs nothing, the
    /// store does not read the events: it keeps its place, and reads on from there when asked.
    public var eventNeed: @Sendable () -> EventLogNeed
    /// Events up to this ID were skipped, unread, as nothing here needed them: before the next
    /// ``jobEvents``, which carries on after it.
    public var eventsSkipped: @Sendable (Int) -> Void
    /// Every event up to this ID is committed or never will be; a stream that starts after
    /// it misses none that commits later. Told on every pass, read or not.
    public var eventLogSettled: @Sendable (Int) -> Void

    public init(cancelsRequested: @escaping @Sendable ([JobID]) -> Void, jobEvents: @escaping @Sendable ([StoredJobEvent]) -> Void,
                watchedJobsMayHaveChanged: @escaping @Sendable () -> Void = {},
                eventNeed: @escaping @Sendable () -> EventLogNeed = { .everything },
                eventsSkipped: @escaping @Sendable (Int) -> Void = { _ in }, eventLogSettled: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.cancelsRequested = cancelsRequested
        self.jobEvents = jobEvents
        self.watchedJobsMayHaveChanged = watchedJobsMayHaveChanged
        self.eventNeed = eventNeed
        self.eventsSkipped = eventsSkipped
        self.eventLogSettled = eventLogSettled
    }
}

/// What a node needs of a shared store's event log at the moment.
public struct EventLogNeed: Sendable, Equatable {
    /// Whether anything here needs the events: an open event stream, a job of another node
    /// that a request here watches, a cached job whose webhook another node may deliver.
    public var isNeeded: Bool
    /// The oldest position an open event stream reads after; nil with no stream open (then
    /// nothing before now is needed: watched jobs are read from the store instead).
    public var streamsAfter: Int?
    /// How many past events a stream may resume from (the replay window's size): no more are
    /// read back after a quiet time.
    public var keeping: Int

    public init(isNeeded: Bool, streamsAfter: Int?, keeping: Int) {
        self.isNeeded = isNeeded
        self.streamsAfter = streamsAfter
        self.keeping = keeping
    }

    /// Every event, from wherever the reader stands.
    public static let everything = EventLogNeed(isNeeded: true, streamsAfter: .min, keeping: .max)
}

extension JobStore {
    /// A store one process owns has nobody else to hear from.
    public func connect(_ feed: ClusterFeed) {}
    /// Nil: job changes are told in process (``JobChangeFeed``), numbered by the event hub.
    public var eventLogPosition: Int? { nil }
    /// Nothing is logged.
    public func purgeEvents(before cutoff: Date, limit: Int) throws(StoreError) -> Int { 0 }
}
