extension PostgresSchema {
    /// Fewer writes per job, in three parts.
    ///
    /// **Admissions are counted, so the queue is not.** Each submitting transaction checked
    /// `--max-queued` by counting the queued jobs, up to the limit: with thousands queued,
    /// 2 ms a batch under the admission lock (measured in `bench/cluster.sh`: 6 µs a job, a
    /// fourteenth of the database's time). `job_admissions.entered` counts every job that ever
    /// entered `queued`: inserted queued, or moved back to `queued` (a drain's hand-back, the
    /// rescue). The triggers keep it, whichever jobpool version writes. A node keeps the last
    /// exact count and the `entered` read just before it; since then the queue has grown by at
    /// most what entered it, so that count plus the growth of `entered` bounds the queue from
    /// above. While the bound leaves room for every job a batch queues, they are admitted
    /// without counting; when it does not, the queue is counted again (``AdmissionBound``). The
    /// limit is as exact as before: a job is never admitted past it, and a submission is refused
    /// only on an exact count.
    ///
    /// The counter's row stays locked until the transaction that queued jobs commits. The
    /// submitting transactions take turns under the admission lock anyway; a hand-back or a
    /// rescue locks the row after its running jobs' rows, and waits for one submitting commit
    /// at most. A submitting transaction that has inserted locks another job's row after the
    /// counter's only to retire an expired idempotency key, or to cancel a waiting job, and a
    /// hand-back or rescue holds only running jobs: a cycle of waits needs a running job whose
    /// expired key a submission takes over at that moment. PostgreSQL breaks such a deadlock
    /// after `deadlock_timeout` (1 s), and the writer runs its batch again.
    ///
    /// **Claims and finishes count their own changes**, as they log their own events since
    /// version 8: a batch of finishes adds its jobs to `job_counts` from a CTE (every job it
    /// finishes leaves an unfinished state, so none is taken off), and a claim counts nothing.
    /// Each sets `jobpool.changes_counted` for its transaction, which the count trigger checks
    /// and clears; it no longer joins their transition tables (measured: about 2 µs a finished
    /// job).
    ///
    /// **`jobs_by_created` and `jobs_by_kind` leave running jobs out**, as `jobs_by_status`
    /// does since version 8. A claim is not a HOT update, so it added an entry to each (measured:
    /// 4 to 5 µs a claimed job); lists read the running jobs, never more than the cluster's
    /// workers, through `jobs_running_by_node` (``PostgresJobListQuery``). Built beside the old
    /// indexes, which are dropped last, so that reads go on during the build.
    ///
    /// Expand only: a version 8 jobpool ignores the counter and counts the queue as before, and
    /// its finishes are counted by the trigger. Its lists filtered by neither status nor owner
    /// cannot use the new indexes (they do not name `status <> 'running'`), so on a large table
    /// they read the table in full until that node is upgraded (README, "Upgrades").
    static let version9 = """
        CREATE TABLE job_admissions (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            entered bigint NOT NULL
        ) WITH (fillfactor = 50);
        INSERT INTO job_admissions (entered) VALUES (0);

        CREATE OR REPLACE FUNCTION jobpool_log_created() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO job_events (at, job_id, event, status, kind, owner, attempt, max_attempts)
            SELECT n.created_at, n.id, 'job.created', n.status, n.kind, n.owner, n.attempt, n.max_attempts
            FROM new_rows n WHERE n.status IN ('queued', 'scheduled') ORDER BY n.created_at, n.id;
            UPDATE job_admissions SET entered = entered + q.n
            FROM (SELECT count(*) AS n FROM new_rows WHERE status = 'queued') q WHERE q.n > 0;
            RETURN NULL;
        END
        $$;

        -- Whether the statement that fired a trigger set `flag` for its transaction (it did the
        -- trigger's work itself); cleared, so that the transaction's next statement is not
        -- taken for it.
        CREATE FUNCTION jobpool_statement_said(flag text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting(flag, true) = 'on' THEN
                PERFORM set_config(flag, 'off', true);
                RETURN true;
            END IF;
            RETURN false;
        END
        $$;

        -- Version 8's, and the jobs that entered `queued`. A statement that logs its own
        -- changes (a claim, a batch of finishes) never moves a job into `queued`.
        CREATE OR REPLACE FUNCTION jobpool_log_changed() RETURNS trigger LANGUAGE plpgsql
            SET enable_hashjoin = on SET enable_mergejoin = on SET enable_nestloop = off SET jit = off AS $$
        BEGIN
            IF jobpool_statement_said('jobpool.changes_logged') THEN RETURN NULL; END IF;
        \(logChangedRows)
            UPDATE job_admissions SET entered = entered + q.n
            FROM (SELECT count(*) AS n FROM new_rows n JOIN old_rows o ON o.id = n.id
                  WHERE n.status = 'queued' AND o.status IS DISTINCT FROM 'queued') q WHERE q.n > 0;
            RETURN NULL;
        END
        $$;

        -- Version 6's, but a statement that counts its own changes (a claim, a batch of finishes)
        -- says so in its own setting, which a version 8 node's statements never set.
        CREATE OR REPLACE FUNCTION jobpool_count_changed() RETURNS trigger LANGUAGE plpgsql
            SET enable_hashjoin = on SET enable_mergejoin = on SET enable_nestloop = off SET jit = off AS $$
        BEGIN
            IF jobpool_statement_said('jobpool.changes_counted') THEN RETURN NULL; END IF;
        \(countChangedRows)
            RETURN NULL;
        END
        $$;

        CREATE INDEX jobs_by_created_without_running ON jobs (created_at, id) WHERE status <> 'running';
        CREATE INDEX jobs_by_kind_without_running ON jobs (kind, created_at, id) WHERE status <> 'running';
        DROP INDEX jobs_by_created;
        DROP INDEX jobs_by_kind;
        ALTER INDEX jobs_by_created_without_running RENAME TO jobs_by_created;
        ALTER INDEX jobs_by_kind_without_running RENAME TO jobs_by_kind;
        """
}
