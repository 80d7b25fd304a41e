import Foundation
import JobCore
import Postgres

/// Each change is one statement (several tables at once through data-modifying `WITH`
/// clauses), so a change costs one round trip to the server. Every write about an attempt
/// names it, and changes nothing when the stored attempt has moved on (a stale attempt): the
/// `WHERE` clauses are the fencing.
extension PostgresJobStore {
    /// Writes one change. Returns false for a stale write about an attempt (see
    /// ``ClaimTokens``), which changed nothing.
    func apply(_ change: StoreChange, on connection: PostgresConnection) throws -> Bool {
        switch change {
        case .submitted(let jobs):
            try submit(jobs, on: connection)

        case .retrying(let key, let attempt, let startedAt, let error, let at, let next):
            let token = claims.token(for: key.id)
            let rows = try connection.query("""
                WITH retried AS (
                    UPDATE jobs SET status = 'scheduled', attempt = $2::int + 1, next_attempt_at = $3::bigint, started_at = NULL,
                                    node = NULL, error_code = $4, error_message = $5, error_status = $6::int
                    WHERE id = $1::uuid AND attempt = $2::int AND finished_at IS NULL AND status = 'running' AND node = $9::uuid
                      \(Self.leaseHolds("$9::uuid"))
                    RETURNING id),
                attempts AS (
                    INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_code, node)
                    SELECT id, $2::int, $7::bigint, $8::bigint, 'failed', $4, $9::uuid FROM retried
                    ON CONFLICT (job_id, attempt) DO UPDATE SET started_at = excluded.started_at, finished_at = excluded.finished_at,
                        outcome = excluded.outcome, error_code = excluded.error_code, node = excluded.node)
                SELECT count(*) AS n FROM retried
                """, [key.id.description, attempt, StoredTime.micros(next), error.code, error.message, error.status,
                      StoredTime.micros(startedAt), StoredTime.micros(at), token?.node])
            return try rows.first?.int("n") == 1

        case .started, .finished:
            // Written in runs, one statement for many (PostgresJobStore+Runs.swift).
            var run = AttemptRun()
            _ = run.add(change, index: 0)
            return try write(run, on: connection).isEmpty

        case .requeued(let key, let attempt, let interrupted):
            // Handed back by this node (a drain, or a claim never run: the same attempt again;
            // after an interruption, the next), if the running attempt is still this node's.
            let token = claims.token(for: key.id)
            let rows = try connection.query("""
                WITH requeued AS (
                    UPDATE jobs SET status = 'queued', started_at = NULL, attempt = $2::int, node = NULL
                    WHERE id = $1::uuid AND attempt = coalesce($3::int, $2::int) AND finished_at IS NULL
                      AND CASE WHEN $6::uuid IS NULL THEN status IN ('queued', 'scheduled')
                               ELSE status = 'running' AND node = $6::uuid \(Self.leaseHolds("$6::uuid")) END
                    RETURNING id),
                interrupted AS (
                    INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, node)
                    SELECT id, $3::int, $4::bigint, $5::bigint, 'interrupted', $6::uuid FROM requeued WHERE $3::int IS NOT NULL
                    ON CONFLICT (job_id, attempt) DO NOTHING)
                SELECT count(*) AS n FROM requeued
                """, [key.id.description, attempt, interrupted?.attempt, interrupted.map { StoredTime.micros($0.startedAt) },
                      StoredTime.micros(Date()), token?.node])
            return try rows.first?.int("n") == 1

        case .webhookAttempted(let id, let attempt, let state, let next):
            // Fenced: only while this node holds the event under a live lease. Refused, the
            // event moved (another node's claim or redelivery, or the sweep after this node's
            // lease lapsed): the deliverer drops it.
            let node = lease.membership.nodeID
            let rows = try connection.query("""
                WITH event AS (
                    UPDATE webhook_events SET state = $9, next_attempt_at = $10::bigint
                    WHERE job_id = $1::uuid AND node = $11::uuid \(Self.leaseHolds("$11::uuid"))
                    RETURNING job_id),
                attempt AS (
                    INSERT INTO webhook_attempts (job_id, number, started_at, duration_us, status, error_code, error_message, next_attempt_at)
                    SELECT job_id, $2::int, $3::bigint, $4::bigint, $5::int, $6, $7, $8::bigint FROM event
                    ON CONFLICT (job_id, number) DO UPDATE SET started_at = excluded.started_at, duration_us = excluded.duration_us,
                        status = excluded.status, error_code = excluded.error_code, error_message = excluded.error_message,
                        next_attempt_at = excluded.next_attempt_at)
                SELECT count(*) AS n FROM event
                """, [id.description, attempt.number, StoredTime.micros(attempt.startedAt), attempt.duration.clampedMicroseconds,
                      attempt.status, attempt.error?.code, attempt.error?.message, attempt.nextAttemptAt.map(StoredTime.micros),
                      state.rawValue, next.map(StoredTime.micros), node])
            return try rows.first?.int("n") == 1

        case .webhookRedelivered(let id, let roundStart):
            // A redelivery on any node claims the event for it in the same write, whoever held
            // it: the holder's next write is refused and it stops sending.
            let node = lease.membership.nodeID
            let rows = try connection.query("""
                WITH event AS (
                    UPDATE webhook_events SET state = 'pending', round_start = $2::int, next_attempt_at = NULL, node = $3::uuid
                    WHERE job_id = $1::uuid \(Self.leaseHolds("$3::uuid"))
                    RETURNING job_id)
                SELECT count(*) AS n FROM event
                """, [id.description, roundStart, node])
            return try rows.first?.int("n") == 1

        case .webhookRendered(let id, let body):
            // The first body written is the one every attempt sends, on any node; so any node
            // (under a live lease) may fill a missing one, whoever holds the event: the node
            // that claims it, or one asked to redeliver it (``JobStore/fillWebhookBody(of:with:)``).
            let node = lease.membership.nodeID
            let rows = try connection.query("""
                WITH event AS (
                    UPDATE webhook_events SET body = CASE WHEN length(body) = 0 THEN $2::bytea ELSE body END
                    WHERE job_id = $1::uuid \(Self.leaseHolds("$3::uuid"))
                    RETURNING job_id)
                SELECT count(*) AS n FROM event
                """, [id.description, PostgresBytes(body), node])
            return try rows.first?.int("n") == 1

        case .cancelRequested(let key, let at):
            // The node that holds the job hears of it from this batch's notification.
            try connection.execute("""
                UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, $2::bigint)
                WHERE id = $1::uuid AND finished_at IS NULL
                """, [key.id.description, StoredTime.micros(at)])

        case .purged(let keys):
            guard !keys.isEmpty else { return true }
            try connection.execute("""
                WITH jobs_gone AS (DELETE FROM jobs WHERE id = ANY($1::uuid[])),
                     attempts_gone AS (DELETE FROM job_attempts WHERE job_id = ANY($1::uuid[])),
                     deliveries_gone AS (DELETE FROM webhook_attempts WHERE job_id = ANY($1::uuid[]))
                DELETE FROM webhook_events WHERE job_id = ANY($1::uuid[])
                """, [PostgresArray(keys.map(\.id.description))])
        }
        return true
    }
}
