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
    static func open(path: String, readerCount: Int, logger: Logger) throws(StoreError) -> DatabasePool {
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
        configuration.maximumReaderCount = max(1, readerCount)
        do {
            // The pool turns WAL on for the writer, then sets synchronous = NORMAL on it (GRDB
            // 7.10, Database.setUpWALMode), after any prepareDatabase has run. A commit must be
            // on disk before a job is acknowledged, so FULL is set again once the pool is open.
            // Only the writer's setting matters: readers never commit.
            let database = try DatabasePool(path: path, configuration: configuration)
            try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
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

    /// Checks that the file is a jobpool store this version can use, and migrates it. The full
    /// integrity check runs after the start (see `SQLiteJobStore+Integrity.swift`); opening
    /// has already read the header and the schema, so a file that is not a database stops here.
    private static func checkAndMigrate(_ database: DatabasePool, path: String, logger: Logger) throws {
        let migrator = makeMigrator()
        let (applied, superseded) = try database.read { db in
            (try migrator.appliedIdentifiers(db), try migrator.hasBeenSuperseded(db))
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
}
