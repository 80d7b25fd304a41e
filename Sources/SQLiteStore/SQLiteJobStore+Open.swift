import Foundation
import GRDB
import Glibc
import JobCore
import Logging

extension SQLiteJobStore {
    /// Makes the store's folder if needed, and checks that this process may write there.
    static func prepareFolder(for path: String) throws(StoreError) {
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw StoreError("cannot create the folder for \(path): \(error.localizedDescription)")
        }
        try StoreFileAccess.checkWritable(path: path)
    }

    /// Opens the file, checks it, and migrates it forward (after a backup copy). The caller
    /// holds the store's owner lock.
    static func open(path: String, logger: Logger) throws(StoreError) -> DatabaseQueue {
        let isNew = !FileManager.default.fileExists(atPath: path)
        if isNew {
            // The file holds webhook secrets: only the server's user may read it. SQLite gives
            // its -wal and -shm files the same mode.
            let descriptor = Glibc.open(path, O_CREAT | O_RDWR | O_EXCL, 0o600)
            guard descriptor >= 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
            Glibc.close(descriptor)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // Set here, not with GRDB's journalMode option, which would also lower synchronous
            // to NORMAL: a commit must be on disk before a job is acknowledged.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            let database = try DatabaseQueue(path: path, configuration: configuration)
            try checkAndMigrate(database, path: path, logger: logger)
            // SQLite quietly opens a write-protected file read-only; a store that cannot take
            // writes must stop the start instead.
            try database.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE; COMMIT") }
            return database
        } catch let error as StoreError {
            throw error
        } catch let error as DatabaseError where [.SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH, .SQLITE_CANTOPEN].contains(error.resultCode) {
            // Access, not damage: the file is fine, so no talk of backups.
            throw StoreError("cannot open the job store: \(describe(error, path: path)). Check that the user jobpool runs as may read and write it and its folder.")
        } catch {
            throw StoreError("cannot open the job store: \(describe(error, path: path)). The file was left as it is; restore it from a backup, or start with another --store path.")
        }
    }

    private static func checkAndMigrate(_ database: DatabaseQueue, path: String, logger: Logger) throws {
        let migrator = makeMigrator()
        let (check, applied, superseded) = try database.read { db in
            (try String.fetchOne(db, sql: "PRAGMA quick_check") ?? "",
             try migrator.appliedIdentifiers(db),
             try migrator.hasBeenSuperseded(db))
        }
        guard check == "ok" else {
            throw StoreError("\(path) is damaged (SQLite quick_check: \(check.prefix(200))). It was left as it is; restore it from a backup.")
        }
        guard !superseded else {
            throw StoreError("\(path) was written by a newer jobpool (schema \(applied.sorted().joined(separator: ","))). Run that version, or restore a backup made before the upgrade.")
        }
        let pending = Set(migrator.migrations).subtracting(applied)
        guard !pending.isEmpty else { return }
        if !applied.isEmpty {
            // An older jobpool's file: keep a copy before changing it.
            let backup = "\(path).backup-\(applied.sorted().last ?? "v0")-\(Int(Date().timeIntervalSince1970))"
            try database.backup(to: DatabaseQueue(path: backup))
            chmod(backup, 0o600)
            logger.notice("Migrating the job store; a backup copy was made", metadata: ["backup": "\(backup)"])
        }
        try migrator.migrate(database)
    }

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
        return migrator
    }
}
