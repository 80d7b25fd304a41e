extension PostgresSchema {
    /// The busiest writes log their own events: a claim and a batch of finishes insert their
    /// `job_events` rows from a CTE of the statement, and tell the log trigger to skip the
    /// statement. Logged by the trigger, every claimed or finished job paid for the statement's
    /// transition tables joined old to new through a `LATERAL` of four cases, twice per job
    /// (measured on a busy node: the trigger's insert took 15.6 µs a job, and disabling it
    /// raised one node's throughput by a fifth); the statement knows each row's old state and
    /// inserts directly.
    ///
    /// - `jobpool_change_events(old, new, started)`: the events of one change of state, in
    ///   order; it mirrors `JobChange.Event(from:to:)`. The trigger and the statements share it,
    ///   so that a change is logged alike on either path. It is inlined into each caller's plan.
    ///   Each event of one change has its own step, which the callers sort by: version 4 gave
    ///   `job.started` and the final event one step, and a sort may swap equal keys.
    /// - The log trigger skips a statement that set `jobpool.changes_logged` for its
    ///   transaction, and clears it, so that the transaction's next statement is logged by the
    ///   trigger again. A statement trigger fires once for each `UPDATE`, even one that changed
    ///   no rows, so the flag never outlives the statement that set it.
    ///
    /// And `jobs_by_status` leaves running jobs out. A change of state cannot be a HOT update,
    /// so each one adds an entry to every index whose predicate the new row meets, and a claim
    /// paid for one here that no query needs: the running jobs are found through
    /// `jobs_running_by_node`, never more than the cluster's workers. The new index is built
    /// beside the old one: writes to `jobs` wait for the build (about a second per million
    /// jobs), reads go on until the old index is dropped at the end. A list filtered by status
    /// names the status in its SQL, not as a parameter, so that a generic plan can prove the
    /// predicate (``PostgresJobListQuery``).
    ///
    /// Internal: a version 7 jobpool never sets the flag, so its writes are logged by the
    /// trigger as before. Contract later: when no version 7 node remains, a version that
    /// drops the trigger's transition tables for the statements' sake.
    static let version8 = """
        CREATE FUNCTION jobpool_change_events(old_status text, new_status text, started boolean)
        RETURNS TABLE (step integer, event text, status text) LANGUAGE sql IMMUTABLE AS $$
            SELECT 1, 'job.queued', 'queued'
            WHERE old_status IS DISTINCT FROM new_status
              AND (new_status = 'queued' OR (old_status = 'scheduled' AND (new_status = 'running' OR started)))
            UNION ALL
            SELECT 2, 'job.started', 'running'
            WHERE old_status IS DISTINCT FROM new_status
              AND (new_status = 'running' OR (old_status IN ('queued', 'scheduled') AND started
                                              AND new_status IN ('succeeded', 'failed', 'cancelled')))
            UNION ALL
            SELECT 2, 'job.retried', 'scheduled' WHERE new_status = 'scheduled' AND old_status = 'running'
            UNION ALL
            SELECT 3, 'job.' || new_status, new_status
            WHERE old_status IS DISTINCT FROM new_status AND new_status IN ('succeeded', 'failed', 'cancelled')
        $$;

        CREATE OR REPLACE FUNCTION jobpool_log_changed() RETURNS trigger LANGUAGE plpgsql
            SET enable_hashjoin = on SET enable_mergejoin = on SET enable_nestloop = off SET jit = off AS $$
        BEGIN
            IF current_setting('jobpool.changes_logged', true) = 'on' THEN
                PERFORM set_config('jobpool.changes_logged', 'off', true);
                RETURN NULL;
            END IF;
        \(logChangedRows)
            RETURN NULL;
        END
        $$;

        -- Built beside the old one, so that reads go on while it builds (CREATE INDEX holds
        -- writes only); the old one is dropped, under a brief exclusive lock, last.
        CREATE INDEX jobs_by_status_without_running ON jobs (status, created_at, id) WHERE status <> 'running';
        DROP INDEX jobs_by_status;
        ALTER INDEX jobs_by_status_without_running RENAME TO jobs_by_status;
        """

    /// The log trigger's insert since version 8 (every change of state of a statement's rows,
    /// from its transition tables), which later versions' triggers keep. Part of shipped
    /// migrations: never edit it; a version that changes it writes its own.
    static let logChangedRows = """
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
        CROSS JOIN LATERAL jobpool_change_events(o.status, n.status, n.started_at IS NOT NULL) e
        ORDER BY n.id, e.step;
        """

    /// The condition a statement that logs its own changes puts on its `job_events` insert:
    /// evaluated once (an uncorrelated subquery), it tells the log trigger to skip this
    /// statement. Whether a statement that changed no rows evaluates it or not, its trigger
    /// has nothing to log.
    static let changesLoggedHere = "(SELECT set_config('jobpool.changes_logged', 'on', true)) IS NOT NULL"

    /// The same for the count trigger (``version9``), on a statement that counts its own
    /// changes in `job_counts`, or has none to count.
    static let changesCountedHere = "(SELECT set_config('jobpool.changes_counted', 'on', true)) IS NOT NULL"
}
