import Foundation
import GRDB
import JobCore
import StoreTestSupport
import Testing
@testable import SQLiteStore

/// What a start reads, what readers wait for, and how a damaged or older file is handled.
@Suite("SQLite store start, readers, integrity and migration")
struct StoreStartTests {
    /// Writes `count` finished jobs straight into the file in one transaction (about a second
    /// for 100,000): 1 % failed, all among the oldest; the rest succeeded.
    private func fillFinished(_ file: TemporaryStore, count: Int, failedPercent: Int = 1) throws {
        let connection = try file.connection()
        defer { try? connection.close() }
        try connection.write { db in
            try db.execute(sql: """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                INSERT INTO jobs (created_at, id, kind, status, input, result, started_at, finished_at, attempt, max_attempts)
                SELECT ? + i, printf('%08x-0000-4000-8000-%012x', i, i), 'write_code',
                       CASE WHEN i <= ? THEN 'failed' ELSE 'succeeded' END, '{"name":"old"}', '{"lines":3}', ? + i, ? + i, 1, 3
                FROM n
                """, arguments: [count, StoredRows.micros(epoch) - Int64(count) * 1000 - 1_000_000,
                                 count * failedPercent / 100, StoredRows.micros(epoch), StoredRows.micros(epoch)])
            // Counted as the store's writer counts what finishes (rows written here bypass it).
            let failed = count * failedPercent / 100
            for (status, number) in [("failed", failed), ("succeeded", count - failed)] where number > 0 {
                try db.execute(sql: """
                    INSERT INTO job_counts (owner, kind, status, count) VALUES ('', 'write_code', ?, ?)
                    ON CONFLICT (owner, kind, status) DO UPDATE SET count = count + excluded.count
                    """, arguments: [status, number])
            }
        }
    }

    @Test("a restart with 100,000 stored jobs reads only the unfinished ones (by the store's counter)")
    func startReadsOnlyUnfinished() throws {
        let file = TemporaryStore()
        let live = [makeJob(createdAt: epoch), makeJob(status: .scheduled, createdAt: epoch.addingTimeInterval(1)),
                    makeJob(kind: "fetch_url", owner: "tenant", createdAt: epoch.addingTimeInterval(2))]
        do {
            let store = try file.open()
            defer { store.close() }
            try write(store, .submitted(live)).get()
            try write(store, .started(live[2].key, attempt: 1, at: epoch)).get()
        }
        try fillFinished(file, count: 100_000)

        let store = try file.open()
        defer { store.close() }
        let state = try store.loadUnfinished()
        #expect(store.lastStartRowsRead == 3)
        #expect(state.jobs.map(\.id) == live.map(\.id), "oldest first")
        #expect(state.jobs.map(\.status) == [.queued, .scheduled, .running])
        #expect(state.counts.values.reduce(0, +) == 100_003, "the counts cover every stored job")
        #expect(state.counts[JobCounts.Key(owner: nil, kind: "write_code", state: .failed)] == 1000)
        #expect(state.counts[JobCounts.Key(owner: "tenant", kind: "fetch_url", state: .running)] == 1)
        // And SQLite's side of it: the unfinished jobs are found by a seek, not a scan.
        let plan = try queryPlan(store.database, SQLiteJobStore.unfinishedJobsSQL)
        #expect(plan.contains("SEARCH jobs USING INDEX jobs_by_status") && !plan.contains("SCAN"), "\(plan)")
        let events = try queryPlan(store.database, SQLiteJobStore.pendingEventsSQL)
        #expect(!events.contains("SCAN e"), "\(events)")

        // The oldest failures are one seek away for a status list, and a job by ID is found.
        let failed = try store.jobs(matching: JobFilter(status: .failed), limit: 100, after: nil)
        #expect(failed.count == 100)
        #expect(failed.allSatisfy { $0.record.status == .failed })
        #expect(zip(failed, failed.dropFirst()).allSatisfy { ($0.record.createdAt, $0.record.id) > ($1.record.createdAt, $1.record.id) })
        let old = try #require(JobID("00000007-0000-4000-8000-000000000007"))
        #expect(try store.job(withID: old)?.record.status == .failed)
    }

    @Test("reads go on while the writer waits on a write lock, and see only what is committed")
    func readersDoNotWaitForTheWriter() throws {
        let file = TemporaryStore()
        let store = try file.open()
        defer { store.close() }
        let committed = makeJob(createdAt: epoch)
        try write(store, .submitted([committed])).get()

        let other = try file.connection()
        try other.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            try db.execute(sql: "UPDATE jobs SET status = 'cancelled' WHERE id = ?", arguments: [committed.id.description])
        }
        // The writer takes this submission and waits for the lock (for up to 5 s) ...
        let waiting = submit(store, .submitted([makeJob(createdAt: epoch.addingTimeInterval(1))]))
        #expect(eventually { store.queue.pendingCount == 0 })
        // ... and reads answer meanwhile, from the last commit.
        for _ in 0..<20 {
            #expect(try store.job(withID: committed.id)?.record.status == .queued)
            #expect(try store.jobs(matching: JobFilter(), limit: 10, after: nil).count == 1)
        }
        #expect(!waiting.isFinished, "the reads did not wait for the writer's commit")
        try other.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
        try other.close()
        #expect(waiting.wait() == .success)
        #expect((try? waiting.result?.get()) != nil)
        #expect(try store.jobs(matching: JobFilter(), limit: 10, after: nil).count == 2)
    }

    @Test("damage past the header is found after the start: readiness fails and new jobs are refused")
    func damageFoundInBackground() throws {
        let file = TemporaryStore()
        do {
            let store = try file.open()
            #expect(eventually { if case .passed = store.integrity.withLock({ $0 }) { true } else { false } },
                    "a sound file passes")
            store.close()
        }
        try fillFinished(file, count: 20_000)
        // Garble the root page of one index that neither opening nor a start reads.
        let connection = try file.connection()
        let (root, pageSize) = try connection.read { db in
            (try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'jobs_by_kind'") ?? 0,
             try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
        }
        try connection.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        try connection.close()
        #expect(root > 1)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: file.path))
        try handle.seek(toOffset: UInt64((root - 1) * pageSize))
        try handle.write(contentsOf: Data((0..<pageSize).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }))
        try handle.close()

        let store = try file.open()
        defer { store.close() }
        #expect(eventually { !store.isWritable }, "the check found the damage")
        #expect(store.integrityFailure?.message.contains("is damaged") == true)
        let refused = try write(store, .submitted([makeJob(createdAt: epoch.addingTimeInterval(5))]))
        guard case .failure(let error) = refused else {
            Issue.record("a damaged store accepted a job")
            return
        }
        #expect(error.message.contains("restore the file from a backup"))
    }

    @Test("a version 4 file is migrated: counts seeded from its jobs, reused keys retired but the newest")
    func migrationFromVersion4() throws {
        let file = TemporaryStore()
        try FileManager.default.createDirectory(at: file.folder, withIntermediateDirectories: true)
        do {
            let old = try DatabaseQueue(path: file.path)
            try SQLiteJobStore.makeMigrator().migrate(old, upTo: "v4-scheduling-retries-idempotency")
            try old.write { db in
                // Two jobs of one key (the older's key had expired), one of another owner.
                for (index, owner) in [(1, nil), (2, nil), (3, "tenant")] as [(Int, String?)] {
                    try db.execute(sql: """
                        INSERT INTO jobs (created_at, id, kind, status, input, attempt, max_attempts, owner, idempotency_key,
                                          idempotency_fingerprint, idempotency_expires_at)
                        VALUES (?, ?, 'write_code', ?, '{}', 1, 3, ?, 'nightly', 'f', ?)
                        """, arguments: [index, "0000000\(index)-0000-4000-8000-000000000000", index == 1 ? "succeeded" : "queued",
                                         owner, StoredRows.micros(epoch) + Int64(index)])
                }
            }
            try old.close()
        }
        let store = try file.open()
        defer { store.close() }
        let state = try store.loadUnfinished()
        #expect(state.counts == [JobCounts.Key(owner: nil, kind: "write_code", state: .succeeded): 1,
                                 JobCounts.Key(owner: nil, kind: "write_code", state: .queued): 1,
                                 JobCounts.Key(owner: "tenant", kind: "write_code", state: .queued): 1])
        let retired = try store.database.read { db in
            try String.fetchAll(db, sql: "SELECT id FROM jobs WHERE idempotency_retired = 1")
        }
        #expect(retired == ["00000001-0000-4000-8000-000000000000"])
        #expect(try store.job(idempotencyKey: "nightly", owner: nil, now: epoch)?.record.id.description == "00000002-0000-4000-8000-000000000000")
        #expect(try store.job(idempotencyKey: "nightly", owner: "tenant", now: epoch)?.record.id.description == "00000003-0000-4000-8000-000000000000")
    }
}
