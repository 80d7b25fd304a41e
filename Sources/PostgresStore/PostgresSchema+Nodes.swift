extension PostgresSchema {
    /// Several nodes on one database: each registers a row with a lease, renewed by its
    /// heartbeat (``NodeLease``). Lease times are the database's clock (`timestamptz`, from
    /// `now()`), never a node's. A node whose lease expired is dead to the others.
    static let version2 = """
        CREATE TABLE nodes (
            id uuid PRIMARY KEY,
            registered_at timestamptz NOT NULL DEFAULT now(),
            renewed_at timestamptz NOT NULL DEFAULT now(),
            lease_until timestamptz NOT NULL,
            host text NOT NULL,
            pid integer NOT NULL
        ) WITH (fillfactor = 50);
        CREATE INDEX nodes_by_lease ON nodes (lease_until);
        """

    /// Claims from the table (``PostgresWorkQueue``): a running job names the node that claimed
    /// it, and so does each attempt, so that fencing and the rescue can tell whose it is.
    static let version3 = """
        ALTER TABLE jobs ADD COLUMN node uuid;
        ALTER TABLE job_attempts ADD COLUMN node uuid;
        CREATE INDEX jobs_running_by_node ON jobs (node) WHERE status = 'running';
        """
}
