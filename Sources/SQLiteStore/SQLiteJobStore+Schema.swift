import GRDB

extension SQLiteJobStore {
    /// The schema, one migration per version. Add migrations; never edit a shipped one.
    static func makeMigrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // Jobs are keyed by (created_at, id) and stored in that order (WITHOUT ROWID): a new
            // job is appended, and a status change finds its row by key. A random UUID key
            // would scatter every insert over the whole table, and group commit would then
            // write a page per job to the WAL instead of a page per batch.
            try db.execute(sql: """
                CREATE TABLE jobs (
                    created_at INTEGER NOT NULL,      -- microseconds since 1970, UTC
                    id TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    status TEXT NOT NULL,
                    input TEXT NOT NULL,
                    result TEXT,
                    error_code TEXT,
                    error_message TEXT,
                    started_at INTEGER,
                    finished_at INTEGER,
                    attempt INTEGER NOT NULL,
                    max_attempts INTEGER NOT NULL,
                    webhook_url TEXT,
                    webhook_key BLOB,                 -- the decoded secret; never returned by the API
                    PRIMARY KEY (created_at, id)
                ) WITHOUT ROWID;

                -- One row per attempt, written when the attempt ends (or, after a crash, when
                -- recovery finds it interrupted).
                -- Keyed by the job's creation time first, for the same append-only reason.
                CREATE TABLE job_attempts (
                    job_created_at INTEGER NOT NULL,
                    job_id TEXT NOT NULL,
                    attempt INTEGER NOT NULL,
                    started_at INTEGER NOT NULL,
                    finished_at INTEGER NOT NULL,
                    outcome TEXT NOT NULL,            -- succeeded, failed, cancelled, interrupted
                    PRIMARY KEY (job_created_at, job_id, attempt)
                ) WITHOUT ROWID;

                -- The outbox: a finished job's webhook event, written with its final state.
                CREATE TABLE webhook_events (
                    job_id TEXT PRIMARY KEY NOT NULL,
                    webhook_id TEXT NOT NULL,
                    url TEXT NOT NULL,
                    body BLOB NOT NULL,
                    state TEXT NOT NULL,
                    round_start INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER
                );

                CREATE TABLE webhook_attempts (
                    job_id TEXT NOT NULL,
                    number INTEGER NOT NULL,
                    started_at INTEGER NOT NULL,
                    duration_us INTEGER NOT NULL,
                    status INTEGER,
                    error_code TEXT,
                    error_message TEXT,
                    next_attempt_at INTEGER,
                    PRIMARY KEY (job_id, number)
                );
                """)
        }
        migrator.registerMigration("v2-list-and-retention-indexes") { db in
            // The list filters (status, kind) and retention (finished_at) read through these.
            try db.execute(sql: """
                CREATE INDEX jobs_by_status ON jobs (status, created_at, id);
                CREATE INDEX jobs_by_kind ON jobs (kind, created_at, id);
                CREATE INDEX jobs_by_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
                CREATE INDEX webhook_events_pending ON webhook_events (state) WHERE state = 'pending';
                """)
        }
        migrator.registerMigration("v3-owner") { db in
            // The tenant (a hash derived from the API key, never the key) that owns each job.
            try db.execute(sql: "ALTER TABLE jobs ADD COLUMN owner TEXT")
        }
        migrator.registerMigration("v4-scheduling-retries-idempotency") { db in
            // next_attempt_at: when a 'scheduled' job (run_at, or a retry's backoff) falls due.
            // error_*: the final error, or while scheduled for a retry, the last attempt's.
            // The idempotency key lives with the job it created, so it outlives a restart.
            try db.execute(sql: """
                ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE jobs ADD COLUMN time_limit_seconds REAL;
                ALTER TABLE jobs ADD COLUMN next_attempt_at INTEGER;
                ALTER TABLE jobs ADD COLUMN error_status INTEGER;
                ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
                ALTER TABLE jobs ADD COLUMN idempotency_fingerprint TEXT;
                ALTER TABLE jobs ADD COLUMN idempotency_expires_at INTEGER;
                ALTER TABLE jobs ADD COLUMN webhook_secret_generated INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE job_attempts ADD COLUMN error_code TEXT;
                """)
        }
        migrator.registerMigration("v5-queries-counts-unique-keys") { db in
            try db.execute(sql: v5QueriesCountsAndUniqueKeys)
        }
        migrator.registerMigration("v6-count-finished-jobs-only") { db in
            try db.execute(sql: v6CountFinishedJobsOnly)
        }
        migrator.registerMigration("v7-find-jobs-by-creation-time") { db in
            try db.execute(sql: v7FindJobsByCreationTime)
        }
        return migrator
    }

    /// The store answers questions (issue 15): an index for each, counts kept by triggers (until v6), and
    /// idempotency keys unique per owner. On a file of a million jobs this runs for some
    /// seconds, once.
    ///
    /// - `jobs_by_id`: a job by its ID (the key is `(created_at, id)`). IDs are UUIDv7, time
    ///   first, so this index grows at its end as the table does.
    /// - `jobs_by_owner`, `jobs_by_owner_status`: a tenant's lists, newest first. Partial
    ///   (`owner IS NOT NULL`): without access control every owner is NULL, and they cost nothing.
    ///   `jobs_by_status` and `jobs_by_kind` (v2) serve the other lists, and also the start: it
    ///   reads the unfinished jobs with one seek per live state, so a separate index of them
    ///   would only add a write to every state change.
    /// - `jobs_by_idempotency_key`: at most one live key per owner (`''` for no owner; the
    ///   expression must be written the same way in a query for SQLite to use the index). A
    ///   key is retired, not erased, when a newer job takes it over after it expired, so the old
    ///   job's record stays as it was submitted. Keys reused before this version (an expired
    ///   key's successor) are retired here, all but the newest.
    /// - `job_counts`: jobs by owner (`''` for none), kind and state, changed by triggers in
    ///   the transaction that changes a job, so statistics and a start read a few rows instead
    ///   of grouping every job (about 100 ms for a million). Seeded with one GROUP BY.
    static let v5QueriesCountsAndUniqueKeys = """
        CREATE UNIQUE INDEX jobs_by_id ON jobs (id);
        CREATE INDEX jobs_by_owner ON jobs (owner, created_at, id) WHERE owner IS NOT NULL;
        CREATE INDEX jobs_by_owner_status ON jobs (owner, status, created_at, id) WHERE owner IS NOT NULL;

        ALTER TABLE jobs ADD COLUMN idempotency_retired INTEGER NOT NULL DEFAULT 0;
        UPDATE jobs SET idempotency_retired = 1
        WHERE (created_at, id) IN (
            SELECT created_at, id FROM (
                SELECT created_at, id, row_number() OVER (
                    PARTITION BY coalesce(owner, ''), idempotency_key ORDER BY created_at DESC, id DESC) AS newest
                FROM jobs WHERE idempotency_key IS NOT NULL)
            WHERE newest > 1);
        CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (coalesce(owner, ''), idempotency_key)
            WHERE idempotency_key IS NOT NULL AND idempotency_retired = 0;

        CREATE TABLE job_counts (
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (owner, kind, status)
        ) WITHOUT ROWID;
        INSERT INTO job_counts (owner, kind, status, count)
            SELECT coalesce(owner, ''), kind, status, count(*) FROM jobs GROUP BY 1, 2, 3;

        CREATE TRIGGER jobs_counted_on_insert AFTER INSERT ON jobs BEGIN
            INSERT INTO job_counts (owner, kind, status, count) VALUES (coalesce(NEW.owner, ''), NEW.kind, NEW.status, 1)
                ON CONFLICT (owner, kind, status) DO UPDATE SET count = count + 1;
        END;
        CREATE TRIGGER jobs_counted_on_status AFTER UPDATE OF status ON jobs WHEN OLD.status IS NOT NEW.status BEGIN
            UPDATE job_counts SET count = count - 1
                WHERE owner = coalesce(OLD.owner, '') AND kind = OLD.kind AND status = OLD.status;
            INSERT INTO job_counts (owner, kind, status, count) VALUES (coalesce(NEW.owner, ''), NEW.kind, NEW.status, 1)
                ON CONFLICT (owner, kind, status) DO UPDATE SET count = count + 1;
        END;
        CREATE TRIGGER jobs_counted_on_delete AFTER DELETE ON jobs BEGIN
            UPDATE job_counts SET count = count - 1
                WHERE owner = coalesce(OLD.owner, '') AND kind = OLD.kind AND status = OLD.status;
        END;
        """

    /// `job_counts` keeps only finished jobs, and the writer keeps it, once per commit (see
    /// `FinishedCounts`). A start reads every unfinished job anyway and counts those itself.
    /// The triggers counted every transition (five upserts per job) and ran a sub-program on
    /// every status update: about 15 µs of the writer's time per job.
    static let v6CountFinishedJobsOnly = """
        DROP TRIGGER jobs_counted_on_insert;
        DROP TRIGGER jobs_counted_on_status;
        DROP TRIGGER jobs_counted_on_delete;
        DELETE FROM job_counts WHERE status NOT IN ('succeeded', 'failed', 'cancelled');
        """

    /// A job is found by ID through its key: a UUIDv7 carries its creation millisecond, so
    /// `created_at` in that millisecond plus `id` is a seek on the primary key. `jobs_by_id`
    /// indexed every row for this and cost the writer about 2 µs per submitted job. It now holds
    /// only the rows whose ID does not tell their time (`id_on_time = 0`): every row written
    /// before this version (the column's default) and any whose ID and time disagree. The
    /// writer sets `id_on_time = 1` after checking it, so a row is always found one way or
    /// the other. Webhook events keep their job's creation time for the same seek.
    static let v7FindJobsByCreationTime = """
        ALTER TABLE webhook_events ADD COLUMN job_created_at INTEGER;
        UPDATE webhook_events SET job_created_at = (SELECT created_at FROM jobs WHERE jobs.id = webhook_events.job_id);
        ALTER TABLE jobs ADD COLUMN id_on_time INTEGER NOT NULL DEFAULT 0;
        DROP INDEX jobs_by_id;
        CREATE UNIQUE INDEX jobs_by_id_off_time ON jobs (id) WHERE id_on_time = 0;
        """
}
