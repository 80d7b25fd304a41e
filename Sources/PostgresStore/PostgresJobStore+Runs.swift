import Foundation
import JobCore
import Postgres

/// Starts and finishes in one statement each, however many there are: a busy pool reports them
/// in bursts, and one `UPDATE … FROM unnest(…)` of a hundred jobs costs about what one job's
/// update does (the round trip and the statement's overhead dominate; measured in a debug
/// build here, 130 µs for a start and 230 µs for a finish, one at a time).
///
/// Only consecutive changes of one kind, for distinct jobs, share a statement, so the order in
/// which changes were applied is kept wherever it can matter: two changes of one job are never
/// merged, nor moved past a change of another kind.
extension PostgresJobStore {
    /// Changes that are written together.
    struct AttemptRun {
        private(set) var changes: [StoreChange] = []
        /// Each change's place in its batch, to report a stale one.
        private(set) var indices: [Int] = []
        private var jobs = Set<JobID>()

        /// Adds `change` (the batch's `index`th) if it can join the run; false if the run must
        /// be written first.
        mutating func add(_ change: StoreChange, index: Int) -> Bool {
            guard let id = Self.jobID(of: change), Self.sameKind(changes.first, change), !jobs.contains(id) else { return false }
            jobs.insert(id)
            changes.append(change)
            indices.append(index)
            return true
        }

        /// The job of a change that can be written in a run (a start or a finish).
        static func jobID(of change: StoreChange) -> JobID? {
            switch change {
            case .started(let key, _, _), .finished(let key, _, _, _, _, _, _, _, _, _): return key.id
            default: return nil
            }
        }

        private static func sameKind(_ first: StoreChange?, _ change: StoreChange) -> Bool {
            switch (first, change) {
            case (nil, _), (.started?, .started), (.finished?, .finished): return true
            default: return false
            }
        }
    }

    /// Writes a run of starts or of finishes in one statement. Returns the batch indices of the
    /// finishes found stale (see ``ClaimTokens``), which changed nothing.
    func write(_ run: AttemptRun, on connection: PostgresConnection) throws -> [Int] {
        guard let first = run.changes.first else { return [] }
        if case .started = first {
            try writeStarts(run.changes, on: connection)
            return []
        }
        let applied = try writeFinishes(run.changes, on: connection)
        return zip(run.changes, run.indices).compactMap { change, index in
            guard let id = AttemptRun.jobID(of: change), !applied.contains(id) else { return nil }
            return index
        }
    }

    /// Each start is fenced by its attempt: it never moves a job back from a later attempt.
    /// A start written here (rather than claimed, see ``PostgresWorkQueue``) is a claim by this
    /// node all the same: the job runs here, under this node's current ID and token.
    private func writeStarts(_ changes: [StoreChange], on connection: PostgresConnection) throws {
        var ids: [String?] = [], attempts: [String?] = [], times: [String?] = []
        let node = lease.membership.nodeID
        for case .started(let key, let attempt, let at) in changes {
            ids.append(key.id.description)
            attempts.append(String(attempt))
            times.append(String(StoredTime.micros(at)))
        }
        let started = try connection.query("""
            UPDATE jobs j SET status = 'running', started_at = v.started_at, attempt = v.attempt, next_attempt_at = NULL, node = $4::uuid
            FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS v(id, attempt, started_at)
            WHERE j.id = v.id AND j.attempt <= v.attempt AND j.finished_at IS NULL
            RETURNING j.id, j.attempt
            """, [PostgresArray(ids), PostgresArray(attempts), PostgresArray(times), node])
        for row in started {
            claims.record(try PostgresRowDecoding.jobID(row, "id"), ClaimTokens.Token(attempt: try row.int("attempt"), node: node))
        }
    }

    /// Each finish is fenced by its token (``ClaimTokens``): the attempt, running on the node
    /// that claimed it, under a lease that still holds; a job this process never claimed only
    /// while nobody has (queued or scheduled: a cancel). A stale finish changes nothing and
    /// writes no webhook event (the event is the outbox row of the final state). The final
    /// attempt is the job row's, with no row of its own (``PostgresSchema/version10``). The
    /// event is claimed by this node in the same write (see
    /// ``PostgresJobStore/claimWebhookEvents(limit:)``), so its first attempt goes out under a
    /// committed claim. Returns the jobs whose finish was written, or was there already: a
    /// finish written again word for word (the same attempt, state and microsecond; a commit
    /// whose reply was lost, retried) is not stale. Its first write committed the final state
    /// and the event, which this node holds; reported stale, the event would wait unsent for
    /// this node's restart. (Every sub-statement sees the table as it was before the
    /// statement, so a row finished by this statement is not counted twice.)
    private func writeFinishes(_ changes: [StoreChange], on connection: PostgresConnection) throws -> Set<JobID> {
        var columns = Array(repeating: [String?](), count: 13)
        for case .finished(let key, let attempt, let startedAt, let status, let result, let error, let at, let event, _, _) in changes {
            let row: [String?] = [
                key.id.description, String(attempt), status.rawValue, result.map(PostgresRowDecoding.json), error?.code,
                error?.message, error?.status.map { String($0) }, String(StoredTime.micros(at)),
                startedAt.map { String(StoredTime.micros($0)) }, event?.webhookID, event?.url,
                event.map { PostgresBytes($0.body).postgresText }, claims.token(for: key.id)?.node,
            ]
            for (column, value) in row.enumerated() { columns[column].append(value) }
        }
        let rows = try connection.query(Self.finishSQL, columns.map { PostgresArray($0) as (any PostgresBindable)? } + [lease.membership.nodeID])
        return Set(try rows.map { try PostgresRowDecoding.jobID($0, "id") })
    }

    /// The finishes' statement: `$1`…`$13` are the columns of the finishes, one array each,
    /// `$14` this node. Its joins are index lookups by job ID (``writerSettings(nodeID:)``).
    ///
    /// A finish found already written is looked up again only when some finish of the batch
    /// changed nothing (a one-time condition): the usual batch, all applied, reads no row twice.
    ///
    /// It logs its own events (``PostgresSchema/version8``) and counts its own finished jobs
    /// (``PostgresSchema/version9``): each left an unfinished state, so each only adds to a
    /// count, in key order as the trigger does. The state a job leaves is
    /// `running` for a claimed job; a job finished unclaimed (a cancel while queued) has its
    /// old row read by key: the statement's snapshot still sees it as it was.
    ///
    /// It leaves the row's `node` and `started_at` (when known) as the claim set them: the
    /// job's final attempt is read from them (``PostgresSchema/version10``).
    static let finishSQL = """
        WITH v AS (
            SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
                                 $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::bytea[], $13::uuid[])
                AS v(id, attempt, status, result, error_code, error_message, error_status, finished_at, started_at,
                     webhook_id, url, body, node)),
        finished AS (
            UPDATE jobs j SET status = v.status, result = v.result, error_code = v.error_code, error_message = v.error_message,
                              error_status = v.error_status, finished_at = v.finished_at,
                              started_at = coalesce(v.started_at, j.started_at), next_attempt_at = NULL
            FROM v WHERE j.id = v.id AND j.attempt = v.attempt AND j.finished_at IS NULL
              AND CASE WHEN v.node IS NULL THEN j.status IN ('queued', 'scheduled')
                       ELSE j.status = 'running' AND j.node = v.node \(PostgresJobStore.leaseHolds("v.node")) END
            RETURNING j.id, v.attempt, v.status, v.error_code, v.error_message, v.error_status, v.finished_at,
                      v.webhook_id, v.url, v.body, v.node, j.kind, j.owner, j.max_attempts, j.started_at AS ran_from,
                      CASE WHEN v.node IS NOT NULL THEN 'running'
                           ELSE (SELECT o.status FROM jobs o WHERE o.id = j.id) END AS finished_from),
        events AS (
            INSERT INTO webhook_events (job_id, webhook_id, url, body, state, round_start, next_attempt_at, node)
            SELECT id, webhook_id, url, body, 'pending', 0, NULL, $14::uuid FROM finished WHERE webhook_id IS NOT NULL),
        counted AS (
            INSERT INTO job_counts AS c (node, owner, kind, status, count)
            SELECT jobpool_count_node(), coalesce(owner, ''), kind, status, count(*) FROM finished
            WHERE \(PostgresSchema.changesCountedHere)
            GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
            ON CONFLICT (node, owner, kind, status) DO UPDATE SET count = c.count + excluded.count),
        logged AS (
            INSERT INTO job_events (at, job_id, event, status, kind, owner, attempt, max_attempts,
                                    error_code, error_message, error_status)
            SELECT CASE WHEN e.status IN ('queued', 'running') THEN coalesce(f.ran_from, f.finished_at) ELSE f.finished_at END,
                   f.id, e.event, e.status, f.kind, f.owner, f.attempt, f.max_attempts,
                   CASE WHEN e.status IN ('failed', 'cancelled') THEN f.error_code END,
                   CASE WHEN e.status IN ('failed', 'cancelled') THEN f.error_message END,
                   CASE WHEN e.status IN ('failed', 'cancelled') THEN f.error_status END
            FROM finished f CROSS JOIN LATERAL jobpool_change_events(f.finished_from, f.status, f.ran_from IS NOT NULL) e
            WHERE \(PostgresSchema.changesLoggedHere)
            ORDER BY f.id, e.step)
        SELECT id FROM finished
        UNION ALL
        SELECT j.id FROM v JOIN jobs j ON j.id = v.id
        WHERE j.attempt = v.attempt AND j.status = v.status AND j.finished_at = v.finished_at
          AND (SELECT count(*) FROM finished) < cardinality($1::uuid[])
        """

    /// The fencing's last condition: the claiming node's lease has not expired (by the
    /// database's clock). A node paused past its lease writes nothing, even before a sweep.
    static func leaseHolds(_ node: String) -> String {
        "AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = \(node) AND n.lease_until > now())"
    }
}
