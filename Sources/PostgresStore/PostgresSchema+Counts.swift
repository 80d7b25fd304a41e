extension PostgresSchema {
    /// Counts per statement. Version 1 counted each finished job with a row trigger, one
    /// upsert of `job_counts` per job: a batch of 300 finishes ran 300 upserts of the same
    /// row (measured: 13 µs a job, a tenth of the database's time on a busy node). The
    /// statement trigger reads the update's transition tables, which the event log's trigger
    /// captures anyway, and writes one change per count. The rule is the same: a job is counted
    /// when it enters a final state and uncounted when it leaves one; an insert of a finished
    /// job is still counted by version 1's row trigger, which only that rare insert fires.
    /// Rows are upserted in key order, so that two transactions lock shared rows in one order.
    ///
    /// And `job_events_by_at` goes: every event paid an entry in it (three a job) for the event
    /// retention alone, which now deletes the oldest IDs instead (IDs are handed out in time
    /// order, see version 4). A version 5 jobpool's retention still works without it, by a
    /// scan. Otherwise internal: any jobpool that works against version 5 works against this.
    static let version6 = """
        DROP TRIGGER jobs_counted_when_finished ON jobs;

        CREATE FUNCTION jobpool_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
        \(countChangedRows)
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER jobs_counted_when_changed AFTER UPDATE ON jobs
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobpool_count_changed();

        DROP INDEX job_events_by_at;
        """

    /// The count trigger's work since version 6 (a statement's moves into and out of final
    /// states, from its transition tables), which later versions' triggers keep. Part of
    /// shipped migrations: never edit it; a version that changes it writes its own.
    static let countChangedRows = """
        -- Most updates (claims, retries) touch no final state: two short scans, not the upsert.
        IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status IN ('succeeded', 'failed', 'cancelled'))
           AND NOT EXISTS (SELECT 1 FROM old_rows WHERE status IN ('succeeded', 'failed', 'cancelled')) THEN
            RETURN NULL;
        END IF;
        INSERT INTO job_counts AS c (node, owner, kind, status, count)
        SELECT jobpool_count_node(), d.owner, d.kind, d.status, sum(d.delta)
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        CROSS JOIN LATERAL (
            SELECT coalesce(o.owner, '') AS owner, o.kind, o.status, -1 AS delta
            WHERE o.status IN ('succeeded', 'failed', 'cancelled')
            UNION ALL
            SELECT coalesce(n.owner, ''), n.kind, n.status, 1
            WHERE n.status IN ('succeeded', 'failed', 'cancelled')
        ) d
        WHERE o.status IS DISTINCT FROM n.status
          AND (o.status IN ('succeeded', 'failed', 'cancelled') OR n.status IN ('succeeded', 'failed', 'cancelled'))
        GROUP BY d.owner, d.kind, d.status HAVING sum(d.delta) <> 0
        ORDER BY d.owner, d.kind, d.status
        ON CONFLICT (node, owner, kind, status) DO UPDATE SET count = c.count + excluded.count;
        """
}

extension PostgresSchema {
    /// The triggers that join a statement's transition tables plan with hash joins, whatever
    /// the session says. The writers' sessions price hash and merge joins out, so that a batch
    /// is never joined to `jobs` read whole (``PostgresJobStore/writerSettings(nodeID:)``);
    /// but a transition table has no index, and a nested loop over two of them costs the
    /// square of the batch: measured, a batch of 1,700 finishes took 5 s. A function's own
    /// settings hold while it runs.
    ///
    /// The two that join only their old and new rows also price nested loops out: PL/pgSQL
    /// plans a trigger's query once per session, for the row counts of its first call, and a
    /// first statement of one row would otherwise leave a nested loop for every later batch.
    /// (The webhook trigger also looks its jobs up in `jobs`, by key, for which a nested loop
    /// is right; its statements are one event each.)
    ///
    /// And none of them is compiled by JIT. Pricing a plan node out adds a vast cost to any plan
    /// that cannot avoid one (a `LATERAL` subquery is always a nested loop), and that cost
    /// crosses the JIT thresholds: each execution then compiled its expressions first,
    /// measured at 330 ms for a 7 ms statement. Jobs' statements are short; JIT never pays.
    ///
    /// Internal: whatever works against version 6 works against this (an older node's
    /// sessions leave hash joins on anyway).
    static let version7 = """
        ALTER FUNCTION jobpool_log_changed() SET enable_hashjoin = on SET enable_mergejoin = on SET enable_nestloop = off SET jit = off;
        ALTER FUNCTION jobpool_count_changed() SET enable_hashjoin = on SET enable_mergejoin = on SET enable_nestloop = off SET jit = off;
        ALTER FUNCTION jobpool_log_webhook() SET enable_hashjoin = on SET enable_mergejoin = on SET jit = off;
        """
}
