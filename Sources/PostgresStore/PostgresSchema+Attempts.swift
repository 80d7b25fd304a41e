extension PostgresSchema {
    /// A job's final attempt is no longer written to `job_attempts`: the job row holds it
    /// already (its `attempt`, `started_at`, `finished_at`, final `status`, `error_code` and the
    /// `node` that ran it). `job_attempts` keeps the attempts that did not end the job (a
    /// retry's failure, an interruption, an attempt `lost` with its node) and the final
    /// attempts that older versions wrote.
    ///
    /// Why: every finished job paid for a row and a key entry written as a speculative insert
    /// (`ON CONFLICT … DO UPDATE`: 3 WAL records), about a seventh of a batch of finishes by
    /// `auto_explain`, for a record no request reads. Measured in `bench/cluster.sh` on one
    /// node (8 alternating pairs of 3 rounds each): 4.6 % more jobs a second.
    ///
    /// `job_attempt_history` shows every attempt, as the table did: its rows, and each
    /// finished job's final attempt from the job row unless a row already records that attempt
    /// (an attempt `lost` with its node, after which the rescue failed the job, or a final
    /// attempt an older version wrote). A job that never started has no attempt, as before.
    /// One case reads differently from the rows of before: a job this node claimed and then
    /// cancelled before its worker started it had no attempt row; it now shows its claimed
    /// attempt `cancelled`, from the claim's time, on the claiming node, which is what happened.
    ///
    /// The view relies on a finish leaving the row's `node` and `started_at` as the claim set
    /// them (``PostgresJobStore/finishSQL``).
    ///
    /// Expand only: a version 9 node still writes its final attempts as rows, and the view
    /// shows each attempt once either way. No jobpool reads the table; it is the record for
    /// people and tests.
    static let version10 = """
        CREATE VIEW job_attempt_history AS
            SELECT job_id, attempt, started_at, finished_at, outcome, error_code, node FROM job_attempts
            UNION ALL
            SELECT j.id, j.attempt, j.started_at, j.finished_at, j.status, j.error_code, j.node FROM jobs j
            WHERE j.finished_at IS NOT NULL AND j.started_at IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM job_attempts a WHERE a.job_id = j.id AND a.attempt = j.attempt);
        """
}
