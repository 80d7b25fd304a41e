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
/// **Reading only while someone listens.** Every node reading every event of the cluster back
/// cost one node 5–10 % of its throughput. So while nothing on this node needs the log (no
/// event stream open, no job of another node watched, no cached job with a webhook), the
/// listener calls ``settle(on:)`` instead of ``read(on:)``: one statement that reads the log's
/// end and the snapshot's bounds, which keeps the checkpoints moving but delivers nothing and
/// leaves ``position`` where it is. When a reader comes, ``skipBacklog(streamsAfter:keeping:)``
/// passes the settled events no reader needs, and ``read(on:)`` carries on: what a stream
/// needs of the quiet time arrives late but in order, each once, as if the node had been slow.
///
/// One thread calls ``read(on:)`` and ``settle(on:)`` (the listener's): on every "events"
/// notification, on every poll, and after a reconnect.
final class PostgresEventTailer: Sendable {
    private struct State {
        /// The newest event delivered (or skipped: at the start, or by ``skipBacklog(streamsAfter:keeping:)``).
        var last: Int
        /// Every ID at or below this that is not visible now never will be.
        var settledThrough: Int
        /// Holes waited on: the highest ID a read saw, and that read's `xmax`.
        var checkpoints: [(seen: Int, xmax: Int64)] = []
        /// Since when committed events have waited behind a hole without the log moving on
        /// (nil: none wait).
        var heldBackSince: ContinuousClock.Instant?
        /// When ``settle(on:)`` last ran.
        var lastSettle: ContinuousClock.Instant?
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

    /// The newest event delivered (or skipped).
    var position: Int { state.withLock { $0.last } }

    /// Every event at or below this is committed or never will be, as of the last read or
    /// settle: a stream that starts after it misses nothing that commits later.
    var settledPosition: Int { state.withLock { max($0.last, $0.settledThrough) } }

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
        try read(on: connection) { delivered += $0 }
        return delivered
    }

    /// The same, handed to `deliver` a batch at a time, as each is read: a read that fails part
    /// way (a catch-up after a quiet time takes many) has delivered every event it moved past.
    func read(on connection: PostgresConnection, each deliver: ([StoredJobEvent]) -> Void) throws {
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
                Self.settleCheckpoints(&state, xmin: xmin)
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
            if !ready.isEmpty { deliver(ready) }
            if !full { break }
        }
    }

    /// Moves the checkpoints on without reading any event: the quiet time's pass (see the type's
    /// comment). Returns ``settledPosition``. Within `interval` of the last settle it asks the
    /// server nothing: under load every commit of the cluster notifies, and what the settled
    /// end is for (where a new stream starts) does not need it to the millisecond.
    @discardableResult
    func settle(on connection: PostgresConnection, notMoreOftenThan interval: Duration = .zero) throws -> Int {
        let due = state.withLock { state in
            let now = ContinuousClock.now
            guard state.lastSettle.map({ now - $0 >= interval }) ?? true else { return false }
            state.lastSettle = now
            return true
        }
        guard due else { return settledPosition }
        guard let row = try connection.query(Self.settleSQL).first else { return settledPosition }
        let seen = try row.int("seen")
        let xmin = try row.int64("snapshot_xmin")
        let xmax = try row.int64("snapshot_xmax")
        return state.withLock { state in
            Self.settleCheckpoints(&state, xmin: xmin)
            // The same reasoning as a read's: the log's end seen by this statement bounds every
            // transaction that holds a lower ID by this snapshot's `xmax`.
            if seen > max(state.last, state.settledThrough), (state.checkpoints.last?.seen ?? .min) < seen {
                state.checkpoints.append((seen, xmax))
            }
            state.heldBackSince = nil // nothing waits to be delivered
            return max(state.last, state.settledThrough)
        }
    }

    /// Before reading again after a quiet time: skips the settled IDs that no reader needs,
    /// and returns the newest ID skipped (nil when none is). A stream needs those after its
    /// position (`streamsAfter`), but never more than the last `count` IDs seen (its replay
    /// window's worth); with no stream, nothing before now is needed (watched jobs are read
    /// from the table instead). Only settled IDs are skipped, so the read goes on from there
    /// in order.
    func skipBacklog(streamsAfter: Int?, keeping count: Int) -> Int? {
        state.withLock { state in
            let seenEnd = max(state.settledThrough, state.checkpoints.last?.seen ?? .min)
            let wanted = max(streamsAfter ?? .max, seenEnd - max(0, count))
            let target = min(wanted, state.settledThrough)
            guard target > state.last else { return nil }
            state.last = target
            return target
        }
    }

    private static func settleCheckpoints(_ state: inout State, xmin: Int64) {
        while let checkpoint = state.checkpoints.first, checkpoint.xmax <= xmin {
            state.settledThrough = max(state.settledThrough, checkpoint.seen)
            state.checkpoints.removeFirst()
        }
    }

    /// The log's end and the snapshot's bounds, from one statement's snapshot; the newest ID
    /// comes from the end of the key, without reading the events.
    static let settleSQL = """
        SELECT (SELECT coalesce(max(id), 0) FROM job_events) AS seen,
               pg_snapshot_xmin(s)::text::bigint AS snapshot_xmin, pg_snapshot_xmax(s)::text::bigint AS snapshot_xmax
        FROM pg_current_snapshot() AS s
        """

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
