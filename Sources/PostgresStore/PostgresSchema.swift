/// The PostgreSQL schema, one migration per version. Add migrations; never edit a shipped one.
///
/// Migrations are expand/contract: a version may add tables, columns and indexes that an older
/// jobpool ignores, and says in ``Migration/compatibleFrom`` the oldest jobpool schema version
/// that still works against it. `jobpool_schema` records both, so that a node one version
/// behind keeps working while the others upgrade, and a node that is too old refuses to start.
enum PostgresSchema {
    struct Migration {
        /// The schema version this migration makes.
        var version: Int
        /// The oldest schema version whose jobpool still works once this one is applied.
        var compatibleFrom: Int
        var sql: String
    }

    /// The version this jobpool writes and reads.
    static var currentVersion: Int { migrations.last?.version ?? 0 }

    /// How much older than the database a jobpool may be: one version behind keeps working
    /// (if the database says it is compatible); two or more are refused.
    static let toleratedVersionsBehind = 1

    /// The sort key's step: a job's `due_key` is when it fell due, less `priority` steps, so a
    /// priority 10 job sorts as if it had waited 100 s longer. The in-memory queue ages jobs by
    /// the same rule (`PriorityQueue`, one priority level per 10 s waited); every node must use
    /// one step, so it lives in the schema (the generated column), not in a flag.
    static let agingStepMicros: Int64 = 10_000_000

    /// The record of what schema the database holds; made before any migration, and never
    /// changed by one.
    static let versionTable = """
        CREATE TABLE IF NOT EXISTS jobpool_schema (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            version integer NOT NULL,
            compatible_from integer NOT NULL,
            migrated_at timestamptz NOT NULL DEFAULT now(),
            migrated_by text NOT NULL
        )
        """

    static let migrations: [Migration] = [
        Migration(version: 1, compatibleFrom: 1, sql: version1),
        // Expand only. A version 1 jobpool still reads and writes every table, but it takes the
        // database for itself and re-queues every running job at start: beside nodes that share
        // the database, it would take their jobs. So it is refused (compatible from 2).
        Migration(version: 2, compatibleFrom: 2, sql: version2),
        // Expand only: a version 2 jobpool ignores the new columns, but it keeps its due work
        // in memory and would run jobs another node claims from the table. Refused.
        Migration(version: 3, compatibleFrom: 3, sql: version3),
        // Expand only, but not compatible with version 3: the jobpool that shipped with version
        // 3 still takes the database for itself (a lock that version 4 nodes no longer hold),
        // keeps its due work in memory and re-queues every running job at start, with no node
        // recorded, so the rescue would take its jobs and it would take theirs. Refused; stop
        // the old nodes before starting new ones (README, "Upgrades").
        Migration(version: 4, compatibleFrom: 4, sql: version4),
        // Expand only: a version 4 jobpool ignores `webhook_events.node` and keeps working. It
        // still loads every pending event at start and sends the events its own jobs make, so
        // while it runs beside version 5 nodes an event may be sent twice (same webhook-id), as
        // before; its unclaimed events are taken by the version 5 nodes' claim passes.
        Migration(version: 5, compatibleFrom: 4, sql: version5),
        // Internal only (how finished jobs are counted): whatever works against version 5
        // works against this.
        Migration(version: 6, compatibleFrom: 4, sql: version6),
        // Internal only (how the triggers are planned).
        Migration(version: 7, compatibleFrom: 4, sql: version7),
        // Internal only (claims and finishes log their own events; the trigger logs the rest).
        Migration(version: 8, compatibleFrom: 4, sql: version8),
        // Expand only (a counter of admissions; list indexes without running jobs).
        Migration(version: 9, compatibleFrom: 4, sql: version9),
        // Expand only (a view; final attempts are read from the job row).
        Migration(version: 10, compatibleFrom: 4, sql: version10),
    ]

    /// The first schema: the tables of the SQLite store (times as microseconds, IDs as `uuid`),
    /// counts kept by statement triggers in per-node rows, and an index for every query.
    ///
    /// - `jobs`: keyed by `id` alone. IDs are UUIDv7, time first, so the key index grows at its
    ///   end; `(created_at, id)` names a job in the API and has an index of its own for lists.
    ///   `fillfactor` leaves room on each page for the new versions of rows that change state,
    ///   and autovacuum runs after 1 % of the rows changed instead of 20 %: every job is
    ///   updated several times in its life, so dead rows pile up fast.
    /// - `due_key`: when a queued or scheduled job fell (or falls) due, less `priority` aging
    ///   steps, stored so that a claim can walk `jobs_due` in order. Aging that compared
    ///   against `now()` at query time could use no index.
    /// - `job_counts`: finished jobs by node, owner (`''` for none), kind and state, as the
    ///   SQLite store keeps them (a start counts the unfinished jobs it reads). Each node's
    ///   writes change only its own rows (the node is the `jobpool.node` session setting), so
    ///   statistics never funnel a cluster's writes through one hot row; a start sums them. A
    ///   job is counted once, when it finishes; retention's deletes are uncounted per statement.
    /// - `jobs_by_idempotency_key`: at most one live (unretired) key per owner; the unique
    ///   index is what makes one key sent to two nodes at once create one job.
    static let version1 = """
        CREATE TABLE jobs (
            id uuid PRIMARY KEY,
            created_at bigint NOT NULL,            -- microseconds since 1970, UTC
            kind text NOT NULL,
            status text NOT NULL CHECK (status IN ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
            input text NOT NULL,                   -- JSON as written; jsonb would refuse \\u0000
            result text,
            error_code text,
            error_message text,
            error_status integer,
            started_at bigint,
            finished_at bigint,
            next_attempt_at bigint,
            attempt integer NOT NULL,
            max_attempts integer NOT NULL,
            priority integer NOT NULL DEFAULT 0,
            time_limit_seconds double precision,
            webhook_url text,
            webhook_key bytea,                     -- the decoded secret; never returned by the API
            webhook_secret_generated boolean NOT NULL DEFAULT false,
            owner text,
            idempotency_key text,
            idempotency_fingerprint text,
            idempotency_expires_at bigint,
            idempotency_retired boolean NOT NULL DEFAULT false,
            due_key bigint GENERATED ALWAYS AS (coalesce(next_attempt_at, created_at) - priority::bigint * \(agingStepMicros)) STORED
        ) WITH (fillfactor = 85, autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);

        CREATE INDEX jobs_by_created ON jobs (created_at, id);
        CREATE INDEX jobs_by_status ON jobs (status, created_at, id);
        CREATE INDEX jobs_by_kind ON jobs (kind, created_at, id);
        CREATE INDEX jobs_by_owner ON jobs (owner, created_at, id) WHERE owner IS NOT NULL;
        CREATE INDEX jobs_by_owner_status ON jobs (owner, status, created_at, id) WHERE owner IS NOT NULL;
        CREATE INDEX jobs_by_finished ON jobs (finished_at, created_at, id) WHERE finished_at IS NOT NULL;
        CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (coalesce(owner, ''), idempotency_key)
            WHERE idempotency_key IS NOT NULL AND NOT idempotency_retired;
        CREATE INDEX jobs_due ON jobs (due_key) WHERE status IN ('queued', 'scheduled');

        -- One row per attempt, written when the attempt ends (or is found interrupted).
        CREATE TABLE job_attempts (
            job_id uuid NOT NULL,
            attempt integer NOT NULL,
            started_at bigint NOT NULL,
            finished_at bigint NOT NULL,
            outcome text NOT NULL,                 -- succeeded, failed, cancelled, interrupted
            error_code text,
            PRIMARY KEY (job_id, attempt)
        );

        -- The outbox: a finished job's webhook event, written with its final state.
        CREATE TABLE webhook_events (
            job_id uuid PRIMARY KEY,
            webhook_id text NOT NULL,
            url text NOT NULL,
            body bytea NOT NULL,
            state text NOT NULL,
            round_start integer NOT NULL DEFAULT 0,
            next_attempt_at bigint
        );
        CREATE INDEX webhook_events_pending ON webhook_events (job_id) WHERE state = 'pending';

        CREATE TABLE webhook_attempts (
            job_id uuid NOT NULL,
            number integer NOT NULL,
            started_at bigint NOT NULL,
            duration_us bigint NOT NULL,
            status integer,
            error_code text,
            error_message text,
            next_attempt_at bigint,
            PRIMARY KEY (job_id, number)
        );

        CREATE TABLE job_counts (
            node text NOT NULL,
            owner text NOT NULL,
            kind text NOT NULL,
            status text NOT NULL,
            count bigint NOT NULL,
            PRIMARY KEY (node, owner, kind, status)
        ) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500);

        CREATE FUNCTION jobpool_count_node() RETURNS text LANGUAGE sql STABLE AS $$
            SELECT coalesce(nullif(current_setting('jobpool.node', true), ''), 'unassigned')
        $$;

        -- A job is counted once, when it finishes (or is inserted finished), and uncounted if
        -- it leaves a final state or is deleted. The WHEN clauses keep every other write
        -- (submits, starts, retries) from firing anything.
        CREATE FUNCTION jobpool_count_finished() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.status IN ('succeeded', 'failed', 'cancelled') THEN
                INSERT INTO job_counts AS c (node, owner, kind, status, count)
                VALUES (jobpool_count_node(), coalesce(OLD.owner, ''), OLD.kind, OLD.status, -1)
                ON CONFLICT (node, owner, kind, status) DO UPDATE SET count = c.count - 1;
            END IF;
            IF NEW.status IN ('succeeded', 'failed', 'cancelled') THEN
                INSERT INTO job_counts AS c (node, owner, kind, status, count)
                VALUES (jobpool_count_node(), coalesce(NEW.owner, ''), NEW.kind, NEW.status, 1)
                ON CONFLICT (node, owner, kind, status) DO UPDATE SET count = c.count + 1;
            END IF;
            RETURN NULL;
        END
        $$;

        -- Retention deletes hundreds of rows in one statement: one change per count, from the
        -- statement's transition table, rather than one per row.
        CREATE FUNCTION jobpool_uncount_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO job_counts AS c (node, owner, kind, status, count)
            SELECT jobpool_count_node(), coalesce(owner, ''), kind, status, -count(*) FROM old_rows
            WHERE status IN ('succeeded', 'failed', 'cancelled') GROUP BY 2, 3, 4
            ON CONFLICT (node, owner, kind, status) DO UPDATE SET count = c.count + excluded.count;
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER jobs_counted_when_inserted_finished AFTER INSERT ON jobs FOR EACH ROW
            WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled')) EXECUTE FUNCTION jobpool_count_finished();
        CREATE TRIGGER jobs_counted_when_finished AFTER UPDATE OF status ON jobs FOR EACH ROW
            WHEN (OLD.status IS DISTINCT FROM NEW.status
                  AND (NEW.status IN ('succeeded', 'failed', 'cancelled') OR OLD.status IN ('succeeded', 'failed', 'cancelled')))
            EXECUTE FUNCTION jobpool_count_finished();
        CREATE TRIGGER jobs_uncounted_when_deleted AFTER DELETE ON jobs
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION jobpool_uncount_deleted();
        """
}
