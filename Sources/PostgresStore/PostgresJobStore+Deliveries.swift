import Foundation
import JobCore
import Postgres

/// Webhook deliveries across nodes: each pending event is held by one node at a time
/// (`webhook_events.node`), and only that node attempts it. The finishing node holds its job's
/// event from the finishing transaction on; a redelivery moves the event to the node that was
/// asked; the rescue sweep releases the events of nodes whose lease expired, and a clean stop
/// releases the node's own; every node's claim pass takes released (and rescue-made) events
/// once they are due. Every attempt is written only while the event is still this node's
/// (``apply(_:on:)``), so a node that lost an event learns it at its next write and stops.
/// Delivery is at least once: an attempt in flight when its node dies is sent again by the
/// next holder, with the same `webhook-id` and body.
extension PostgresJobStore {
    /// Claims up to `limit` due, unclaimed pending events for this node, in one transaction,
    /// skipping rows another node is claiming at the same moment. Each comes with its attempts
    /// so far, so the deliverer resumes its schedule (attempt numbers, round) where the last
    /// holder left it. An event whose body is empty was made by the rescue: render it before
    /// the first attempt (``StoreChange/webhookRendered(_:body:)``).
    public func claimWebhookEvents(limit: Int) throws(StoreError) -> [WebhookEventRecord] {
        guard limit > 0, lease.isHeld else { return [] }
        let node = lease.membership.nodeID
        return try read("claim webhook events") { connection in
            try connection.transaction {
                let rows = try connection.query(Self.claimEventsSQL, [node, limit])
                guard !rows.isEmpty else { return [] }
                let ids = try rows.map { try PostgresRowDecoding.jobID($0, "job_id") }
                var attempts: [JobID: [DeliveryAttempt]] = [:]
                for row in try connection.query("SELECT * FROM webhook_attempts WHERE job_id = ANY($1::uuid[]) ORDER BY job_id, number",
                                                [PostgresArray(ids.map(\.description))]) {
                    attempts[try PostgresRowDecoding.jobID(row, "job_id"), default: []].append(try PostgresRowDecoding.deliveryAttempt(row))
                }
                return try rows.map { row in
                    try PostgresRowDecoding.webhookEvent(row, attempts: attempts[try PostgresRowDecoding.jobID(row, "job_id")] ?? [])
                }
            }
        }
    }

    /// Through `webhook_events_unclaimed`, in due order; due by the database's clock (a
    /// `next_attempt_at` is written from the node's clock, which the lease already trusts to
    /// within a lease). Only while this node's lease holds.
    static let claimEventsSQL = """
        WITH claimed AS (
            UPDATE webhook_events e SET node = $1::uuid
            WHERE e.job_id IN (
                SELECT job_id FROM webhook_events
                WHERE state = 'pending' AND node IS NULL
                  AND coalesce(next_attempt_at, 0) <= (extract(epoch FROM now()) * 1000000)::bigint
                ORDER BY coalesce(next_attempt_at, 0), job_id LIMIT $2::int
                FOR UPDATE SKIP LOCKED)
              AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = $1::uuid AND n.lease_until > now())
            RETURNING e.*)
        SELECT c.*, j.webhook_key FROM claimed c LEFT JOIN jobs j ON j.id = c.job_id ORDER BY c.job_id
        """

    /// Gives back events this node claimed but could not hand to its deliverer.
    public func releaseWebhookEvents(_ ids: [JobID]) throws(StoreError) {
        guard !ids.isEmpty else { return }
        try read("release webhook events") { connection in
            _ = try connection.execute("""
                UPDATE webhook_events SET node = NULL WHERE node = $1::uuid AND state = 'pending' AND job_id = ANY($2::uuid[])
                """, [lease.membership.nodeID, PostgresArray(ids.map(\.description))])
        }
    }

    /// This node's ID while its lease surely holds; nil otherwise (its deliverer then waits
    /// before each attempt, and drops the events of an ID it no longer has).
    public var webhookClaimant: String? {
        lease.isHeld ? lease.membership.nodeID : nil
    }

    /// At a clean stop: this node's pending events go back to the pool, for the other nodes'
    /// next claim pass (or this node's next start). A failure is logged; the events are then
    /// released by the rescue sweep once this node's lease has expired.
    func releaseWebhookEvents(on connection: PostgresConnection) {
        do {
            let released = try connection.execute("""
                UPDATE webhook_events SET node = NULL WHERE node = $1::uuid AND state = 'pending'
                """, [lease.membership.nodeID])
            if released > 0 { logger.info("Released this node's pending webhook events", metadata: ["count": "\(released)"]) }
        } catch {
            logger.warning("Could not release this node's pending webhook events; they are released when its lease expires",
                           metadata: ["error": "\(target.scrub("\(error)"))"])
        }
    }

    /// Held by the node deleting expired jobs. "jobpool" in ASCII, then 6.
    static let jobRetentionLockKey: Int64 = 0x6A6F_6270_6F6F_6C06

    /// Deletes up to `limit` expired jobs in one transaction on one node at a time (the others
    /// find the lock taken and delete nothing this round), through `jobs_by_finished`. A job
    /// whose webhook is pending is spared, as is a job another transaction holds (a
    /// redelivery, say). The count rows are corrected by the delete trigger.
    public func purgeExpired(finishedBefore cutoff: Date, limit: Int) throws(StoreError) -> [StoredJobSummary] {
        guard limit > 0 else { return [] }
        return try read("delete expired jobs") { connection in
            try connection.transaction {
                let locked = try connection.query("SELECT pg_try_advisory_xact_lock($1::bigint) AS locked", [Self.jobRetentionLockKey])
                guard try locked.first?.bool("locked") == true else { return [] }
                return try connection.query("""
                    WITH doomed AS (
                        SELECT id FROM jobs
                        WHERE finished_at IS NOT NULL AND finished_at < $1::bigint
                          AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.job_id = jobs.id AND e.state = 'pending')
                        ORDER BY finished_at, created_at, id LIMIT $2::int
                        FOR UPDATE SKIP LOCKED),
                    attempts_gone AS (DELETE FROM job_attempts WHERE job_id IN (SELECT id FROM doomed)),
                    deliveries_gone AS (DELETE FROM webhook_attempts WHERE job_id IN (SELECT id FROM doomed)),
                    events_gone AS (DELETE FROM webhook_events WHERE job_id IN (SELECT id FROM doomed))
                    DELETE FROM jobs j USING doomed d WHERE j.id = d.id
                    RETURNING j.created_at, j.id, j.owner, j.kind, j.status
                    """, [StoredTime.micros(cutoff), limit]).map(PostgresRowDecoding.summary)
            }
        }
    }
}
