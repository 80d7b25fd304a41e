import JobCore
import Logging
import Postgres

extension PostgresJobStore {
    /// Held while migrations run, so that nodes starting together migrate one at a time (the
    /// others wait, then find the schema current). "jobpool" in ASCII, then 1.
    static let migrationLockKey: Int64 = 0x6A6F_6270_6F6F_6C01

    /// Brings the database's schema to ``PostgresSchema/currentVersion``, under the migration
    /// lock. A database from a newer jobpool is used as it is if it is at most one version
    /// newer and says this version still works with it; otherwise the start is refused.
    static func migrate(_ connection: PostgresConnection, migrations: [PostgresSchema.Migration] = PostgresSchema.migrations,
                        logger: Logger) throws {
        let current = migrations.last?.version ?? 0
        try connection.execute("SELECT pg_advisory_lock($1::bigint)", [migrationLockKey])
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock($1::bigint)", [migrationLockKey]) }
        try connection.execute(PostgresSchema.versionTable)
        let recorded = try connection.query("SELECT version, compatible_from FROM jobpool_schema").first
        let version = try recorded?.int("version") ?? 0
        let compatibleFrom = try recorded?.int("compatible_from") ?? 0
        if version > current {
            guard version - current <= PostgresSchema.toleratedVersionsBehind, compatibleFrom <= current else {
                throw StoreError("the database \(connection.target.redacted) holds jobpool schema version \(version) (which works with jobpool schema \(compatibleFrom) and later), written by a newer jobpool; this jobpool uses schema version \(current). Run the jobpool version the other nodes run.")
            }
            logger.notice("The database's schema is one version newer than this jobpool's, and still works with it; run the newer jobpool here soon",
                          metadata: ["schema": "\(version)", "this": "\(current)"])
            return
        }
        for migration in migrations where migration.version > version {
            try connection.transaction {
                try connection.executeScript(migration.sql)
                try connection.execute("""
                    INSERT INTO jobpool_schema (singleton, version, compatible_from, migrated_by) VALUES (true, $1::int, $2::int, $3)
                    ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, compatible_from = excluded.compatible_from,
                        migrated_at = now(), migrated_by = excluded.migrated_by
                    """, [migration.version, migration.compatibleFrom, "jobpool schema \(migration.version)"])
            }
            logger.notice("Migrated the job store's schema", metadata: ["version": "\(migration.version)"])
        }
    }
}
