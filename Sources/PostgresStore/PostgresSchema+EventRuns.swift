extension PostgresSchema {
    /// The event log learns to read events written a statement at a time; nothing writes them
    /// yet. Expand only, and the first of two steps.
    ///
    /// **Why.** Each job writes three `job_events` rows (created, started, final), each a heap
    /// tuple and a key entry, and every node reads each of them back. Measured in
    /// `bench/cluster.sh` on one node (2026-12-05): with no events written at all, a node ran
    /// 17–24 % more jobs a second; with the claims', finishes' and submissions' events written
    /// as one row per statement (a prototype of the next step, arrays of columns), 8–17 %
    /// more, the database spending about 8 µs less a job. That is what stands between one
    /// PostgreSQL node and half of SQLite's throughput.
    ///
    /// **The run.** `job_event_runs` holds the events of one statement, in order, as arrays of
    /// the `job_events` columns a job's change needs (a webhook's final state stays a row of
    /// `job_events`). A run takes one value of the log's sequence, its `first_id`, and its
    /// events have the IDs that follow: event `i` (from 1) is `first_id + i - 1`, at most
    /// ``eventRunCapacity`` of them. So that no other event takes those IDs, the sequence must
    /// step by that capacity first: `job_event_stride.stride_from` records the first value
    /// taken at that step (NULL until then), and every sequence value from there on is a
    /// multiple of the capacity past it. Both the stepping and the writers come with the
    /// next version, so that every node that can read a run is running by the time any run
    /// is written (a version 9 node, which reads `job_events` alone, is two versions behind
    /// that one and is refused).
    ///
    /// **Reading.** The tailer reads runs and rows together, each run as one place in the
    /// log's order (``PostgresEventTailer``); `job_event_log` shows both as rows, one per
    /// event, for tests and for people reading the database. Retention deletes a run once
    /// its newest event is past the cutoff (`newest_at`).
    ///
    /// **Older nodes.** A version 9 node reads `job_events` alone. So that it keeps working
    /// once runs are written, a run is to be copied into `job_events` rows, marked `mirrored`,
    /// while such a node holds a lease: each node now registers its schema version in
    /// `nodes.schema_version`, which a version 9 node leaves NULL. This version's tailer
    /// passes over mirrored rows, whose events it reads from their runs.
    static let version10 = """
        CREATE TABLE job_event_runs (
            first_id bigint PRIMARY KEY,
            newest_at bigint NOT NULL,
            ats bigint[] NOT NULL,
            job_ids uuid[] NOT NULL,
            events text[] NOT NULL,
            statuses text[] NOT NULL,
            kinds text[] NOT NULL,
            owners text[] NOT NULL,
            attempts integer[] NOT NULL,
            max_attempts integer[] NOT NULL,
            error_codes text[],
            error_messages text[],
            error_statuses integer[],
            CHECK (cardinality(ats) BETWEEN 1 AND \(eventRunCapacity))
        ) WITH (autovacuum_vacuum_insert_scale_factor = 0.05);

        CREATE TABLE job_event_stride (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            stride_from bigint
        );
        INSERT INTO job_event_stride (stride_from) VALUES (NULL);

        ALTER TABLE job_events ADD COLUMN mirrored boolean;
        ALTER TABLE nodes ADD COLUMN schema_version integer;

        CREATE VIEW job_event_log AS
            SELECT id, at, job_id, event, status, kind, owner, attempt, max_attempts, error_code, error_message,
                   error_status, webhook_url, webhook_state, webhook_attempts
            FROM job_events WHERE mirrored IS NOT TRUE
            UNION ALL
            SELECT r.first_id + e.n - 1, e.at, e.job_id, e.event, e.status, e.kind, e.owner, e.attempt, e.max_attempts,
                   e.error_code, e.error_message, e.error_status, NULL, NULL, NULL
            FROM job_event_runs r \(unnestEventRun("r"));
        """

    /// The most events one run holds, and the step of the log's sequence once runs are written.
    static let eventRunCapacity = 1024

    /// A run's events as rows (`n` from 1), joined to the run named `run`. The error arrays may
    /// be NULL (no event of the run failed): `unnest` pads them with NULLs.
    static func unnestEventRun(_ run: String) -> String {
        """
        CROSS JOIN LATERAL unnest(\(run).ats, \(run).job_ids, \(run).events, \(run).statuses, \(run).kinds, \(run).owners,
                                  \(run).attempts, \(run).max_attempts, \(run).error_codes, \(run).error_messages, \(run).error_statuses)
            WITH ORDINALITY AS e(at, job_id, event, status, kind, owner, attempt, max_attempts, error_code, error_message, error_status, n)
        """
    }
}
