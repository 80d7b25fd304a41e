extension PostgresSchema {
    /// Across nodes: cancel requests, and the event log.
    ///
    /// - `jobs.cancel_requested_at`: a cancel asked for on a node that does not hold the job;
    ///   the node that does finds it (notified at once, or by its ~1 s poll) through the small
    ///   partial index of open requests, and cancels the job as a local cancel would.
    /// - `job_events`: every visible job change, written by triggers in the transaction that
    ///   makes it, whichever code path (or jobpool version) writes it: submissions, starts and
    ///   claims, retries, re-queues, final states, a webhook's final delivery state. Its IDs
    ///   are the event stream's global `Last-Event-ID`. The identity's `CACHE 1` matters: each
    ///   ID is taken from the sequence when the row is written, so IDs are handed out in time
    ///   order across sessions, which the tailer's safe horizon relies on
    ///   (``PostgresEventTailer``). The triggers are per statement, with transition tables: a
    ///   batch of a hundred finishes writes its hundred events in one `INSERT … SELECT`.
    ///   A scheduled job is still `scheduled` in the table until a worker takes it, so its
    ///   `job.queued` is logged with its `job.started`; and a start written in the same commit
    ///   as the finish is left out (`GroupCommitQueue.coalesced`), so a job that ran and went
    ///   straight from `queued` to a final state is logged as started too.
    static let version4 = """
        ALTER TABLE jobs ADD COLUMN cancel_requested_at bigint;
        CREATE INDEX jobs_cancel_requested ON jobs (id) WHERE cancel_requested_at IS NOT NULL AND finished_at IS NULL;

        CREATE TABLE job_events (
            id bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
            xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            at bigint NOT NULL,                    -- microseconds since 1970, UTC
            job_id uuid NOT NULL,
            event text NOT NULL,
            status text NOT NULL,
            kind text NOT NULL,
            owner text,
            attempt integer NOT NULL,
            max_attempts integer NOT NULL,
            error_code text,
            error_message text,
            error_status integer,
            webhook_url text,
            webhook_state text,
            webhook_attempts integer
        ) WITH (autovacuum_vacuum_insert_scale_factor = 0.05);
        CREATE INDEX job_events_by_at ON job_events (at);

        CREATE FUNCTION jobpool_clock_micros() RETURNS bigint LANGUAGE sql VOLATILE AS $$
            SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
        $$;

        CREATE FUNCTION jobpool_log_created() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO job_events (at, job_id, event, status, kind, owner, attempt, max_attempts)
            SELECT n.created_at, n.id, 'job.created', n.status, n.kind, n.owner, n.attempt, n.max_attempts
            FROM new_rows n WHERE n.status IN ('queued', 'scheduled') ORDER BY n.created_at, n.id;
            RETURN NULL;
        END
        $$;

        -- Mirrors JobChange.Event(from:to:): a state change worth telling, and nothing else.
        CREATE FUNCTION jobpool_log_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO job_events (at, job_id, event, status, kind, owner, attempt, max_attempts,
                                    error_code, error_message, error_status)
            SELECT CASE WHEN e.status IN ('succeeded', 'failed', 'cancelled') THEN coalesce(n.finished_at, jobpool_clock_micros())
                        WHEN e.status = 'running' THEN coalesce(n.started_at, jobpool_clock_micros())
                        ELSE jobpool_clock_micros() END,
                   n.id, e.event, e.status, n.kind, n.owner, n.attempt, n.max_attempts,
                   CASE WHEN e.status IN ('failed', 'cancelled', 'scheduled') THEN n.error_code END,
                   CASE WHEN e.status IN ('failed', 'cancelled', 'scheduled') THEN n.error_message END,
                   CASE WHEN e.status IN ('failed', 'cancelled', 'scheduled') THEN n.error_status END
            FROM new_rows n JOIN old_rows o ON o.id = n.id
            CROSS JOIN LATERAL (
                SELECT 1 AS step, 'job.queued' AS event, 'queued' AS status
                WHERE n.status = 'queued' OR (o.status = 'scheduled' AND (n.status = 'running' OR n.started_at IS NOT NULL))
                UNION ALL SELECT 2, 'job.started', 'running'
                WHERE n.status = 'running' OR (o.status IN ('queued', 'scheduled') AND n.started_at IS NOT NULL
                                               AND n.status IN ('succeeded', 'failed', 'cancelled'))
                UNION ALL SELECT 2, 'job.retried', 'scheduled' WHERE n.status = 'scheduled' AND o.status = 'running'
                UNION ALL SELECT 2, 'job.' || n.status, n.status WHERE n.status IN ('succeeded', 'failed', 'cancelled')
            ) e
            WHERE o.status IS DISTINCT FROM n.status
            ORDER BY n.id, e.step;
            RETURN NULL;
        END
        $$;

        CREATE FUNCTION jobpool_log_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO job_events (at, job_id, event, status, kind, owner, attempt, max_attempts,
                                    webhook_url, webhook_state, webhook_attempts)
            SELECT jobpool_clock_micros(), j.id, 'webhook.' || n.state, j.status, j.kind, j.owner, j.attempt, j.max_attempts,
                   n.url, n.state, (SELECT count(*) FROM webhook_attempts a WHERE a.job_id = n.job_id)
            FROM new_rows n JOIN old_rows o ON o.job_id = n.job_id JOIN jobs j ON j.id = n.job_id
            WHERE n.state IN ('delivered', 'failed') AND o.state IS DISTINCT FROM n.state
            ORDER BY n.job_id;
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER jobs_logged_when_created AFTER INSERT ON jobs
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobpool_log_created();
        CREATE TRIGGER jobs_logged_when_changed AFTER UPDATE ON jobs
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobpool_log_changed();
        CREATE TRIGGER webhooks_logged_when_settled AFTER UPDATE ON webhook_events
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobpool_log_webhook();
        """
}
