import Foundation
import JobCore
import Postgres
import Synchronization

/// Reads the event log in ID order, each event exactly once, never past an event whose
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
/// **Runs.** A statement may write its events as one run (``PostgresSchema/version10``),
/// which takes one sequence value and owns the IDs after it, up to a run's capacity. The log
/// is then a series of places, each a sequence value: a row of `job_events`, or a run. The
/// horizon works on places as it did on IDs, and a run is delivered whole. Once the sequence
/// steps by a run's capacity, consecutive places are that step apart
/// (``follows(_:_:strideFrom:)``). Rows copied from runs for older nodes (`mirrored`) are
/// passed over: their events come with their runs.
///
/// One thread calls ``read(on:)`` (the listener's): on every "events" notification, on every
/// poll, and after a reconnect.
final class PostgresEventTailer: Sendable {
    /// Where the tailer starts: the log's end, as ``end(on:)`` finds it.
    struct Position: Sendable {
        /// The newest event.
        var event: Int
        /// Its place in the log: its own ID for a row of `job_events`, the run's `first_id`
        /// for an event of a run.
        var place: Int
    }

    private struct State {
        /// The newest event delivered (or skipped at the start).
        var last: Int
        /// The place of that event (see ``Position``): what the next read looks past.
        var lastPlace: Int
        /// Every place at or below this that is not visible now never will be.
        var settledThrough: Int
        /// Holes waited on: the highest place a read saw, and that read's `xmax`.
        var checkpoints: [(seen: Int, xmax: Int64)] = []
        /// Since when committed events have waited behind a hole without the log moving on
        /// (nil: none wait).
        var heldBackSince: ContinuousClock.Instant?
    }

    /// The events of one place in the log: one row, or a whole run.
    private struct Place {
        var place: Int
        var inRun: Bool
        var events: [StoredJobEvent]
    }

    /// Rows of `job_events` per read, and runs of `job_event_runs`; a full read is followed by
    /// another at once.
    let batchSize: Int
    let runBatchSize: Int
    private let state: Mutex<State>

    /// - Parameter position: the newest event that is not to be delivered (the log's end when
    ///   this node starts: what came before belongs to no stream of this node).
    init(after position: Position, batchSize: Int = 1000, runBatchSize: Int = 32) {
        self.batchSize = batchSize
        self.runBatchSize = runBatchSize
        state = Mutex(State(last: position.event, lastPlace: position.place, settledThrough: position.place))
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
    static func end(on connection: PostgresConnection) throws -> Position {
        let row = try connection.query("""
            SELECT greatest((SELECT max(id) FROM job_events),
                            (SELECT first_id + cardinality(ats) - 1 FROM job_event_runs ORDER BY first_id DESC LIMIT 1)) AS event,
                   greatest((SELECT max(id) FROM job_events), (SELECT max(first_id) FROM job_event_runs)) AS place
            """).first
        return Position(event: try row?.optionalInt("event") ?? 0, place: try row?.optionalInt("place") ?? 0)
    }

    /// Whether `place` comes right after `last` in the log, with no sequence value between
    /// them that another transaction could hold. Before the sequence steps by a run's
    /// capacity, places are consecutive values; from `strideFrom` on they are a capacity
    /// apart (``PostgresSchema/version10``).
    static func follows(_ place: Int, _ last: Int, strideFrom: Int?) -> Bool {
        guard let strideFrom else { return place == last + 1 }
        return place >= strideFrom ? place == last + PostgresSchema.eventRunCapacity : place == last + 1
    }

    /// The events that became readable since the last call, oldest first.
    func read(on connection: PostgresConnection) throws -> [StoredJobEvent] {
        var delivered: [StoredJobEvent] = []
        while true {
            let after = state.withLock { $0.lastPlace }
            let rows = try connection.query(Self.readSQL, [after, batchSize, runBatchSize])
            // No event: the bounds of a snapshot taken now serve as well, since a later
            // snapshot only settles more (nothing was seen to set a checkpoint by).
            guard let first = try rows.first ?? connection.query(Self.snapshotSQL).first else { break }
            let xmin = try first.int64("snapshot_xmin")
            let xmax = try first.int64("snapshot_xmax")
            let strideFrom = rows.isEmpty ? nil : try first.optionalInt("stride_from")
            let places = try Self.places(rows)
            // A full read of either kind may have left out places past the last it returned:
            // only the places up to the lower of those bounds are complete.
            let rowsFull = places.reduce(0) { $0 + ($1.inRun ? 0 : 1) } == batchSize
            let runsFull = places.reduce(0) { $0 + ($1.inRun ? 1 : 0) } == runBatchSize
            let horizon = min(rowsFull ? places.last { !$0.inRun }?.place ?? .max : .max,
                              runsFull ? places.last { $0.inRun }?.place ?? .max : .max)
            let complete = places.prefix { $0.place <= horizon }
            let (ready, full) = state.withLock { state -> ([StoredJobEvent], Bool) in
                while let checkpoint = state.checkpoints.first, checkpoint.xmax <= xmin {
                    state.settledThrough = max(state.settledThrough, checkpoint.seen)
                    state.checkpoints.removeFirst()
                }
                let before = state.lastPlace
                var ready: [StoredJobEvent] = []
                var taken = 0
                for place in complete {
                    // Every place between the last delivered and this one is missing from this
                    // read; it may go on only if all of them are settled.
                    guard Self.follows(place.place, state.lastPlace, strideFrom: strideFrom)
                            || place.place - 1 <= state.settledThrough else { break }
                    ready += place.events
                    state.last = place.events.last?.id ?? state.last
                    state.lastPlace = place.place
                    taken += 1
                }
                if let seen = complete.last?.place, seen > state.lastPlace, (state.checkpoints.last?.seen ?? .min) < seen {
                    state.checkpoints.append((seen, xmax))
                }
                // Held back: an event seen is not delivered. A checkpoint outlives its hole (it
                // settles only when every transaction as old as its read has ended), so it is
                // the undelivered events that count, and the clock restarts whenever the log
                // moves on: under load, short holes come and go all the time.
                let waiting = (state.checkpoints.last?.seen ?? .min) > state.lastPlace
                if !waiting || state.lastPlace > before {
                    state.heldBackSince = waiting ? .now : nil
                } else if state.heldBackSince == nil {
                    state.heldBackSince = .now
                }
                return (ready, (rowsFull || runsFull) && taken == complete.count)
            }
            delivered += ready
            if !full { break }
        }
        return delivered
    }

    /// The rows of a read, a place each, or a run's events together.
    private static func places(_ rows: PostgresRows) throws -> [Place] {
        var places: [Place] = []
        for row in rows {
            let place = try row.int("place")
            let event = try Self.event(row)
            if places.last?.place == place {
                places[places.count - 1].events.append(event)
            } else {
                places.append(Place(place: place, inRun: try row.bool("in_run"), events: [event]))
            }
        }
        return places
    }

    /// The rows and the runs after place `$1`, at most `$2` and `$3` of them, in the log's
    /// order, each with the bounds of the statement's snapshot, so that all come from the same
    /// snapshot (`pg_current_snapshot()` is the statement's: each subquery is run once, and
    /// both read it). Only the columns ``event(_:)`` reads: every event of the cluster passes
    /// through here. Each part reads its table's key in order.
    static let readSQL = """
        WITH logged_rows AS (
            SELECT id AS place, id, at, job_id, event, status, kind, owner, attempt, max_attempts, error_code, error_message,
                   error_status, webhook_url, webhook_state, webhook_attempts, false AS in_run
            FROM job_events WHERE id > $1::bigint AND mirrored IS NOT TRUE ORDER BY id LIMIT $2::int),
        logged_runs AS (
            SELECT * FROM job_event_runs WHERE first_id > $1::bigint ORDER BY first_id LIMIT $3::int)
        SELECT (SELECT pg_snapshot_xmin(s)::text::bigint FROM pg_current_snapshot() AS s) AS snapshot_xmin,
               (SELECT pg_snapshot_xmax(s)::text::bigint FROM pg_current_snapshot() AS s) AS snapshot_xmax,
               (SELECT stride_from FROM job_event_stride) AS stride_from, l.*
        FROM (SELECT * FROM logged_rows
              UNION ALL
              SELECT r.first_id, r.first_id + e.n - 1, e.at, e.job_id, e.event, e.status, e.kind, e.owner, e.attempt,
                     e.max_attempts, e.error_code, e.error_message, e.error_status, NULL, NULL, NULL, true
              FROM logged_runs r \(PostgresSchema.unnestEventRun("r"))) l
        ORDER BY l.place, l.id
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
