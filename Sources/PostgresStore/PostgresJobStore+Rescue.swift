import Foundation
import JobCore
import Postgres

/// The rescue: the running jobs of nodes that died (their lease expired, or their row is gone)
/// go back to the queue as their next attempt, or fail once they have no attempt left. Any
/// node runs it, after each heartbeat; one at a time, under a transaction-scoped advisory lock
/// that a busy node simply skips. A starting node never recovers jobs itself: only this does.
extension PostgresJobStore {
    /// "jobpool" in ASCII, then 5: held by the transaction of one rescue sweep (event retention
    /// has its own key, so that a long purge never makes every rescue skip).
    static let rescueLockKey: Int64 = 0x6A6F_6270_6F6F_6C05

    /// How long the sweep waits for a lock (a node row, a webhook event) before it gives up until
    /// the next heartbeat: half a heartbeat, at most 2 s. It runs on the heartbeat's thread and
    /// connection, so a transaction left open on a row (a session cut off mid-commit, an
    /// operator's `psql`) must not hold up this node's own lease renewal. Job rows it does not
    /// wait for at all (`SKIP LOCKED`): one held row must not stop the rescue of every other.
    var rescueLockTimeoutMilliseconds: Int64 {
        min(2000, lease.settings.heartbeat.clampedMicroseconds / 2000)
    }

    /// The message of a job failed by the rescue.
    static let nodeLostMessage = "The node running this job stopped renewing its lease (it died, or was cut off from the database), and the job had used all of its attempts (max_attempts)."

    /// One sweep, in one transaction on `connection`: every running job whose node's lease has
    /// expired (or whose node row is gone) is re-queued as attempt + 1, or failed with
    /// `node_lost` when out of attempts; its attempt is recorded `lost`; expired node rows are
    /// deleted. A job failed here gets its webhook event, unclaimed and without a body (the
    /// body is the HTTP layer's to render: the node that claims the event renders it before
    /// the first attempt). The pending webhook events held by dead nodes are released, for
    /// the next claim pass of any node. Returns the rescued jobs as they now stand; none if
    /// another node is sweeping.
    ///
    /// The dead node's own late writes are fenced (``ClaimTokens``): each names the node and
    /// the attempt, so none lands once the job has moved on.
    ///
    /// A rescued row this node cannot read (a column a newer schema changed) is rescued all the
    /// same, and left out of what is returned, with an error logged: decoded in the sweep's
    /// transaction, it would roll back every sweep, for every dead node's jobs.
    public func rescueExpired(on connection: PostgresConnection) throws -> [JobRecord] {
        var unreadable: [String] = []
        let rescued = try connection.transaction {
            let taken = try connection.query("SELECT pg_try_advisory_xact_lock($1::bigint) AS taken", [Self.rescueLockKey])
            guard try taken.first?.bool("taken") == true else { return [JobRecord]() }
            try connection.execute("SET LOCAL lock_timeout = '\(rescueLockTimeoutMilliseconds)ms'")
            unreadable = []
            return try connection.query(Self.rescueSQL, [Self.nodeLostMessage]).compactMap { row -> JobRecord? in
                do {
                    return try PostgresRowDecoding.job(row)
                } catch {
                    unreadable.append("\((try? row.string("id")) ?? "?"): \(error)")
                    return nil
                }
            }
        }
        if !unreadable.isEmpty {
            logger.error("Rescued jobs whose rows this node cannot read; they are rescued, but not announced here", metadata: [
                "count": "\(unreadable.count)", "error": "\(target.scrub(unreadable.prefix(3).joined(separator: "; ")))",
            ])
        }
        return rescued
    }

    /// Skips a job row another transaction holds (a late finish of the dead node: it commits,
    /// or finds the job moved on); the next sweep, a heartbeat later, looks at it again.
    static let rescueSQL = """
        WITH clock AS (SELECT (extract(epoch FROM now()) * 1000000)::bigint AS now_us),
        lost AS (
            SELECT j.id, j.attempt, j.max_attempts, j.started_at, j.node FROM jobs j
            WHERE j.status = 'running'
              AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = j.node AND n.lease_until > now())
            FOR UPDATE OF j SKIP LOCKED),
        marked AS (
            INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_code, node)
            SELECT lost.id, lost.attempt, coalesce(lost.started_at, clock.now_us), clock.now_us, 'lost', 'node_lost', lost.node
            FROM lost, clock
            ON CONFLICT (job_id, attempt) DO UPDATE SET finished_at = excluded.finished_at, outcome = 'lost',
                error_code = 'node_lost', node = excluded.node),
        rescued AS (
            UPDATE jobs j SET
                status = CASE WHEN lost.attempt < lost.max_attempts THEN 'queued' ELSE 'failed' END,
                attempt = CASE WHEN lost.attempt < lost.max_attempts THEN lost.attempt + 1 ELSE lost.attempt END,
                started_at = CASE WHEN lost.attempt < lost.max_attempts THEN NULL ELSE j.started_at END,
                finished_at = CASE WHEN lost.attempt < lost.max_attempts THEN NULL ELSE clock.now_us END,
                error_code = CASE WHEN lost.attempt < lost.max_attempts THEN j.error_code ELSE 'node_lost' END,
                error_message = CASE WHEN lost.attempt < lost.max_attempts THEN j.error_message ELSE $1 END,
                error_status = CASE WHEN lost.attempt < lost.max_attempts THEN j.error_status ELSE NULL END,
                node = NULL, next_attempt_at = NULL
            FROM lost, clock WHERE j.id = lost.id
            RETURNING j.*),
        events AS (
            INSERT INTO webhook_events (job_id, webhook_id, url, body, state, round_start, next_attempt_at, node)
            SELECT id, 'msg_' || replace(gen_random_uuid()::text, '-', ''), webhook_url, ''::bytea, 'pending', 0, NULL, NULL
            FROM rescued WHERE status = 'failed' AND webhook_url IS NOT NULL
            ON CONFLICT (job_id) DO NOTHING),
        released AS (
            UPDATE webhook_events e SET node = NULL
            WHERE e.state = 'pending' AND e.node IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = e.node AND n.lease_until > now())),
        gone AS (DELETE FROM nodes WHERE lease_until <= now())
        SELECT * FROM rescued
        """

    /// A sweep after a heartbeat: the rescued jobs are told to this node's executor (metrics,
    /// and the live event stream). A failure is logged; the next heartbeat sweeps again.
    func sweep(on connection: PostgresConnection) {
        do {
            let rescued = try rescueExpired(on: connection)
            guard !rescued.isEmpty else { return }
            logger.notice("Rescued the jobs of nodes whose lease expired", metadata: [
                "requeued": "\(rescued.count { $0.status == .queued })", "failed": "\(rescued.count { $0.status == .failed })",
            ])
            claimer.reportRescued(rescued)
        } catch {
            logger.error("Rescue sweep failed", metadata: ["error": "\(target.scrub("\(error)"))"])
        }
    }
}
