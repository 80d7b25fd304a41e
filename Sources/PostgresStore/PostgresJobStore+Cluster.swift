import Foundation
import JobCore
import Postgres

/// What this node hears from the others, through its listener (``PostgresListener``): due
/// work wakes the claimer, cancels reach the jobs held here, and the event log is read in
/// order for the event stream and for waiters on jobs that run elsewhere. Every notification
/// only hurries what the ~1 s poll (and the re-check after a reconnect) would find anyway.
extension PostgresJobStore {
    public var eventLogPosition: Int? { tailer.position }

    public func connect(_ feed: ClusterFeed) {
        clusterFeed.withLock { $0 = feed }
    }

    /// The listener's handlers: a notice names what to look at; a re-check looks at all of it.
    var listenerHandlers: PostgresListener.Handlers {
        PostgresListener.Handlers(
            notified: { [weak self] notice, connection in
                guard let self else { return }
                if notice.work { (workQueue as? PostgresWorkQueue)?.wakeForNewWork() }
                let cancels = notice.cancels.compactMap(JobID.init)
                if !cancels.isEmpty { clusterFeed.withLock { $0 }?.cancelsRequested(cancels) }
                if notice.events { try tail(on: connection) }
            },
            recheck: { [weak self] _, connection in
                guard let self else { return }
                (workQueue as? PostgresWorkQueue)?.wakeForNewWork()
                try recheckCancels(on: connection)
                try tail(on: connection)
                // The event stream must keep its order and waits for the hole; the jobs watched
                // here need not: they are read from the table instead, each poll while it lasts.
                if tailer.isHeldBack(for: Self.eventLogPatience) { clusterFeed.withLock { $0 }?.watchedJobsMayHaveChanged() }
            })
    }

    /// How long the event log may hold committed events back before the jobs watched here are
    /// read from the table (see ``PostgresEventTailer/isHeldBack(for:)``).
    static let eventLogPatience: Duration = .seconds(2)

    /// Hands the events that became readable to the feed, in order; or, while nothing on this
    /// node needs them, only moves the log's settled end on (see ``PostgresEventTailer``).
    func tail(on connection: PostgresConnection) throws {
        let feed = clusterFeed.withLock { $0 }
        let need = feed?.eventNeed()
        guard let feed, let need, need.isNeeded else {
            // The position stays: a reader that comes later gets every event from there on.
            let settled = try tailer.settle(on: connection, notMoreOftenThan: Self.quietSettleInterval)
            feed?.eventLogSettled(settled)
            return
        }
        if let skipped = tailer.skipBacklog(streamsAfter: need.streamsAfter, keeping: need.keeping) {
            // Skipped events were committed before the settle that passed them: the jobs
            // watched here are read again, after it, so that they miss none of them.
            feed.eventsSkipped(skipped)
        }
        try tailer.read(on: connection) { feed.jobEvents($0) }
        feed.eventLogSettled(tailer.settledPosition)
    }

    /// At most how often a node that reads no events asks where the log's settled end is (a
    /// new stream starts there): every commit of the cluster notifies, and a settled end a
    /// moment old only means a new stream's first events are a moment old.
    static let quietSettleInterval: Duration = .milliseconds(250)

    /// Every open cancel request (there are few: a request closes when its job finishes),
    /// through the partial index `jobs_cancel_requested`.
    func recheckCancels(on connection: PostgresConnection) throws {
        guard let feed = clusterFeed.withLock({ $0 }) else { return }
        let rows = try connection.query("""
            SELECT id FROM jobs WHERE cancel_requested_at IS NOT NULL AND finished_at IS NULL LIMIT 10000
            """)
        let ids = try rows.map { try PostgresRowDecoding.jobID($0, "id") }
        if !ids.isEmpty { feed.cancelsRequested(ids) }
    }

    /// Deletes up to `limit` events older than `cutoff`, oldest first, on one node at a time
    /// (the others find the lock taken and skip this round). Returns how many were deleted.
    ///
    /// It walks the oldest IDs, which is the oldest events: IDs are handed out in time order
    /// (``PostgresSchema/version4``). An event whose time is a little earlier than an older
    /// ID's (a finish stamped before its commit) waits for its turn.
    public func purgeEvents(before cutoff: Date, limit: Int) throws(StoreError) -> Int {
        try read("delete old events") { connection in
            try connection.transaction {
                let locked = try connection.query("SELECT pg_try_advisory_xact_lock($1::bigint) AS locked", [Self.eventRetentionLockKey])
                guard try locked.first?.bool("locked") == true else { return 0 }
                return try connection.execute("""
                    DELETE FROM job_events WHERE id IN (
                        SELECT id FROM job_events ORDER BY id LIMIT $2::int) AND at < $1::bigint
                    """, [StoredTime.micros(cutoff), limit])
            }
        }
    }

    /// Held by the node deleting old events. "jobpool" in ASCII, then 4.
    static let eventRetentionLockKey: Int64 = 0x6A6F_6270_6F6F_6C04
}
