import Foundation
import JobCore
import Postgres
import Synchronization

/// Reads `job_events` in ID order, each event exactly once, never past an event whose
/// transaction might still commit.
///
/// **Why a horizon.** IDs come from a sequence when a row is written, and transactions commit
/// in another order: transaction A takes ID 10, B takes 11 and commits, A commits later. A
/// reader that took "everything after the last ID I saw" would read 11, move past 10, and
/// never see it. So the tailer delivers an event only when every lower ID is either delivered
/// or known never to come (a rolled-back transaction leaves a hole for good).
///
/// **How it knows a hole is for good.** Each read runs in one statement, whose snapshot
/// `pg_current_snapshot()` also returns. If the read sees ID `m`, then every lower ID was taken
/// from the sequence before `m` was (`CACHE 1`: IDs are handed out in time order), and `m`'s
/// transaction committed before the snapshot; the triggers write events after their job row,
/// so a transaction has its transaction ID (xid) before it takes an event ID. So every
/// transaction holding an ID below `m` got its xid before the snapshot was taken: it is below
/// that snapshot's `xmax`. Once a later read's `xmin` (the oldest transaction still running)
/// reaches that `xmax`, all of them have ended, and a hole below `m` that is still empty then
/// stays empty. The tailer keeps such (`m`, `xmax`) checkpoints for the holes it is waiting
/// on; a hole whose transaction is still open holds back everything after it (the test proves
/// it with a transaction kept open).
///
/// One thread calls ``read(on:)`` (the listener's): on every "events" notification, on every
/// poll, and after a reconnect.
final class PostgresEventTailer: Sendable {
    private struct State {
        /// The newest event delivered (or skipped at the start).
        var last: Int
        /// Every ID at or below this that is not visible now never will be.
        var settledThrough: Int
        /// Holes waited on: the highest ID a read saw, and that read's `xmax`.
        var checkpoints: [(seen: Int, xmax: Int64)] = []
        /// Since when committed events have waited behind a hole without the log moving on
        /// (nil: none wait).
        var heldBackSince: ContinuousClock.Instant?
    }

    /// Rows per read; a full read is followed by another at once.
    let batchSize: Int
    private let state: Mutex<State>

    /// - Parameter position: the newest event that is not to be delivered (the log's end when
    ///   this node starts: what came before belongs to no stream of this node).
    init(after position: Int, batchSize: Int = 1000) {
        self.batchSize = batchSize
        state = Mutex(State(last: position, settledThrough: position))
    }

    /// The newest event delivered.
    var position: Int { state.withLock { $0.last } }

    /// True when committed events have waited behind a hole for at least `duration`. A hole
    /// waits for every transaction older than its read, on the whole server: one long
    /// transaction that wrote anything, in any database, holds the log back until it ends.
    func isHeldBack(for duration: Duration) -> Bool {
        state.withLock { state in state.heldBackSince.map { ContinuousClock.now - $0 >= duration } ?? false }
    }

    /// The log's end now: where a starting node's tailer begins.
    static func end(on connection: PostgresConnection) throws -> Int {
        try connection.query("SELECT coalesce(max(id), 0) AS last FROM job_events").first?.int("last") ?? 0
    }

    /// The events that became readable since the last call, oldest first.
    func read(on connection: PostgresConnection) throws -> [StoredJobEvent] {
        var delivered: [StoredJobEvent] = []
        while true {
            let last = state.withLock { $0.last }
            let rows = try connection.query(Self.readSQL, [last, batchSize])
            // No event: the bounds of a snapshot taken now serve as well, since a later
            // snapshot only settles more (nothing was seen to set a checkpoint by).
            guard let first = try rows.first ?? connection.query(Self.snapshotSQL).first else { break }
            let xmin = try first.int64("snapshot_xmin")
            let xmax = try first.int64("snapshot_xmax")
            let events = try rows.map(Self.event)
            let (ready, full) = state.withLock { state -> ([StoredJobEvent], Bool) in
                while let checkpoint = state.checkpoints.first, checkpoint.xmax <= xmin {
                    state.settledThrough = max(state.settledThrough, checkpoint.seen)
                    state.checkpoints.removeFirst()
                }
                let before = state.last
                var ready: [StoredJobEvent] = []
                for event in events {
                    // Every ID between the last delivered and this one is missing from this
                    // read; it may go on only if all of them are settled.
                    guard event.id == state.last + 1 || event.id - 1 <= state.settledThrough else { break }
                    ready.append(event)
                    state.last = event.id
                }
                if let seen = events.last?.id, seen > state.last, (state.checkpoints.last?.seen ?? .min) < seen {
                    state.checkpoints.append((seen, xmax))
                }
                // Held back: an event seen is not delivered. A checkpoint outlives its hole (it
                // settles only when every transaction as old as its read has ended), so it is
                // the undelivered events that count, and the clock restarts whenever the log
                // moves on: under load, short holes come and go all the time.
                let waiting = (state.checkpoints.last?.seen ?? .min) > state.last
                if !waiting || state.last > before {
                    state.heldBackSince = waiting ? .now : nil
                } else if state.heldBackSince == nil {
                    state.heldBackSince = .now
                }
                return (ready, events.count == batchSize && ready.count == events.count)
            }
            delivered += ready
            if !full { break }
        }
        return delivered
    }

    /// The events after `$1`, each with the bounds of the statement's snapshot, so that both
    /// come from the same snapshot (`pg_current_snapshot()` is the statement's: each subquery
    /// is run once, and both read it). Only the columns ``event(_:)`` reads: every event of the
    /// cluster passes through here. The events come in index order, with no sort.
    static let readSQL = """
        SELECT (SELECT pg_snapshot_xmin(s)::text::bigint FROM pg_current_snapshot() AS s) AS snapshot_xmin,
               (SELECT pg_snapshot_xmax(s)::text::bigint FROM pg_current_snapshot() AS s) AS snapshot_xmax,
               id, at, job_id, event, status, kind, owner, attempt, max_attempts, error_code, error_message, error_status,
               webhook_url, webhook_state, webhook_attempts
        FROM job_events WHERE id > $1::bigint ORDER BY id LIMIT $2::int
        """

    static let snapshotSQL = """
        SELECT pg_snapshot_xmin(s)::text::bigint AS snapshot_xmin, pg_snapshot_xmax(s)::text::bigint AS snapshot_xmax
        FROM pg_current_snapshot() AS s
        """

    static func event(_ row: PostgresRow) throws -> StoredJobEvent {
        let name = try row.string("event")
        guard let event = JobChange.Event(rawValue: name) else { throw StoreError("the event log holds an unknown event \(name.prefix(40))") }
        let status = try PostgresRowDecoding.state(row)
        let error = try row.optionalString("error_code").map { code throws in
            JobFailure(code: code, message: try row.optionalString("error_message") ?? "", status: try row.optionalInt("error_status"))
        }
        let webhook = try row.optionalString("webhook_state").flatMap(WebhookState.init(rawValue:)).map { state throws in
            WebhookStatus(url: try row.optionalString("webhook_url") ?? "", state: state, attempts: try row.optionalInt("webhook_attempts") ?? 0)
        }
        return StoredJobEvent(id: try row.int("id"), jobID: try PostgresRowDecoding.jobID(row, "job_id"), kind: try row.string("kind"),
                              owner: try row.optionalString("owner"), event: event, status: status,
                              at: StoredTime.date(try row.int64("at")), attempt: try row.int("attempt"),
                              maxAttempts: try row.int("max_attempts"), error: error, webhook: webhook)
    }
}
