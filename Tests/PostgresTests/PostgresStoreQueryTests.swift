import Foundation
import JobCore
import Postgres
import StoreTestSupport
import Testing
@testable import PostgresStore

/// The PostgreSQL store answers every question as `MemoryJobStore`, the reference semantics,
/// does: the same changes go to both, and every answer is compared (as for SQLite).
@Suite("PostgreSQL store queries match the memory store", .needsPostgres)
struct PostgresStoreQueryTests {
    private func bothStores() throws -> (TestDatabase, PostgresJobStore, MemoryJobStore, StoreScenario) {
        let scenario = StoreScenario()
        let database = try TestDatabase()
        let store = try database.open()
        let memory = MemoryJobStore()
        for change in scenario.changes {
            _ = try writeIsStale(store, change) // the scenario's stale writes are refused as such
            try write(memory, change).get()
        }
        return (database, store, memory, scenario)
    }

    @Test("a job by ID, with its webhook's state and attempts")
    func jobByID() throws {
        let (database, store, memory, scenario) = try bothStores()
        defer { store.close(); withExtendedLifetime(database) {} }
        for job in scenario.jobs {
            #expect(try store.job(withID: job.id) == (try memory.job(withID: job.id)), "job \(job.input)")
        }
        #expect(try store.job(withID: JobID()) == nil)
    }

    @Test("jobs by IDs in one read: each as read by its ID, with its webhook's state; unknown IDs left out")
    func jobsByIDs() throws {
        let (database, store, memory, scenario) = try bothStores()
        defer { store.close(); withExtendedLifetime(database) {} }
        let ids = scenario.jobs.map(\.id) + [JobID()]
        let read = try store.jobs(withIDs: ids)
        #expect(read.count == scenario.jobs.count)
        for stored in read {
            #expect(stored == (try memory.job(withID: stored.record.id)), "job \(stored.record.input)")
        }
        #expect(try store.jobs(withIDs: []).isEmpty)
    }

    @Test("pages of every filter, walked with several page sizes, newest first with no gap or repeat")
    func pages() throws {
        let (database, store, memory, _) = try bothStores()
        defer { store.close(); withExtendedLifetime(database) {} }
        var nonEmpty = 0
        for filter in StoreScenario.filters {
            for limit in [1, 7, 100] {
                var cursor: JobCursor?
                var walked: [JobID] = []
                for _ in 0..<100 {
                    let page = try store.jobs(matching: filter, limit: limit, after: cursor)
                    #expect(page == (try memory.jobs(matching: filter, limit: limit, after: cursor)),
                            "filter \(filter), limit \(limit), after \(String(describing: cursor))")
                    walked += page.map(\.record.id)
                    guard let last = page.last, page.count == limit else { break }
                    cursor = JobKey(id: last.record.id, createdAt: last.record.createdAt)
                }
                #expect(Set(walked).count == walked.count, "no repeats")
                if limit == 100, !walked.isEmpty { nonEmpty += 1 }
            }
        }
        #expect(nonEmpty >= 30, "the filters select something")
        #expect(try store.jobs(matching: JobFilter(), limit: 0, after: nil).isEmpty)
    }

    @Test("a cursor between two jobs of the same time, and a range that ends before the cursor")
    func cursorEdges() throws {
        let (database, store, memory, scenario) = try bothStores()
        defer { store.close(); withExtendedLifetime(database) {} }
        for job in scenario.jobs {
            for filter in [JobFilter(), JobFilter(createdBefore: job.createdAt), JobFilter(createdBefore: job.createdAt.addingTimeInterval(2)),
                           JobFilter(createdFrom: job.createdAt)] {
                #expect(try store.jobs(matching: filter, limit: 5, after: job.key) == (try memory.jobs(matching: filter, limit: 5, after: job.key)))
            }
        }
    }

    @Test("idempotency keys by owner, webhook events with attempts, expired jobs, and what a start reads")
    func otherQueries() throws {
        let (database, store, memory, scenario) = try bothStores()
        defer { store.close(); withExtendedLifetime(database) {} }
        for owner in [nil, "tenant-a", "tenant-b"] as [String?] {
            for key in stride(from: 0, to: 20, by: 5).map({ "key-\($0)" }) {
                for now in [epoch, epoch.addingTimeInterval(3599), epoch.addingTimeInterval(3600)] {
                    #expect(try store.job(idempotencyKey: key, owner: owner, now: now)
                            == (try memory.job(idempotencyKey: key, owner: owner, now: now)), "\(key) of \(owner ?? "none")")
                }
            }
        }
        #expect(try store.job(idempotencyKey: "key-0", owner: nil, now: epoch) != nil, "the scenario has keys")
        for job in scenario.jobs {
            #expect(try store.webhookEvent(of: job.id).map(Self.describe) == (try memory.webhookEvent(of: job.id)).map(Self.describe))
        }
        for cutoff in [epoch] + scenario.finishTimes + [Date.distantFuture] {
            for limit in [1, 4, 1000] {
                #expect(try store.expiredJobs(finishedBefore: cutoff, limit: limit)
                        == (try memory.expiredJobs(finishedBefore: cutoff, limit: limit)), "before \(cutoff), limit \(limit)")
            }
        }
        let start = try store.loadUnfinished()
        let reference = try memory.loadUnfinished()
        #expect(start.jobs == reference.jobs)
        #expect(start.counts == reference.counts)
        #expect(start.webhookEvents.map(Self.describe).sorted() == reference.webhookEvents.map(Self.describe).sorted())
        #expect(start.webhookEvents.count == 2)
    }

    @Test("every query is served by an index once the table is large")
    func plans() throws {
        let database = try TestDatabase()
        let connection = try database.connection()
        defer { connection.close() }
        try connection.execute("""
            INSERT INTO jobs (id, created_at, kind, status, input, attempt, max_attempts, finished_at, owner)
            SELECT gen_random_uuid(), i, CASE WHEN i % 2 = 0 THEN 'write_code' ELSE 'fetch_url' END,
                   CASE WHEN i % 100 = 0 THEN 'queued' WHEN i % 1000 = 1 THEN 'running' WHEN i % 100 = 2 THEN 'failed'
                        ELSE 'succeeded' END, '{}', 1, 3,
                   CASE WHEN i % 100 = 0 OR i % 1000 = 1 THEN NULL ELSE i END, CASE WHEN i % 3 = 0 THEN 'tenant' END
            FROM generate_series(1, 50000) AS i
            """)
        try connection.execute("UPDATE jobs SET node = gen_random_uuid() WHERE status = 'running'")
        try connection.execute("ANALYZE jobs")
        func plan(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) throws -> String {
            try connection.query("EXPLAIN " + sql, parameters).map { try $0.string("QUERY PLAN") }.joined(separator: "\n")
        }
        // The plan the store runs after a few executions: generic, made without the parameters' values.
        try connection.execute("SET plan_cache_mode = force_generic_plan")
        var prepared = 0
        func genericPlan(_ sql: String, _ parameters: [(any PostgresBindable)?]) throws -> String {
            prepared += 1
            try connection.executeScript("PREPARE list\(prepared) AS \(sql)")
            let values = parameters.map { $0.map { "'" + $0.postgresText.replacingOccurrences(of: "'", with: "''") + "'" } ?? "NULL" }
            return try plan("EXECUTE list\(prepared)(\(values.joined(separator: ", ")))")
        }
        let cursor = JobKey(id: JobID(), createdAt: epoch)
        // Running jobs (no more than the cluster's workers: here one in a thousand) are not in
        // `jobs_by_status` (schema 8), `jobs_by_created` or `jobs_by_kind` (schema 9): they are
        // listed through `jobs_running_by_node`. Queued
        // ones may be read through either index that holds them, and sorted.
        let indexes: [JobState?: [String]] = [.queued: ["jobs_by_status", "jobs_due"], .failed: ["jobs_by_status"],
                                              .running: ["jobs_running_by_node"]]
        for filter in [JobFilter(), JobFilter(status: .queued), JobFilter(status: .running), JobFilter(status: .failed),
                       JobFilter(kind: "fetch_url"), JobFilter(owner: "tenant"), JobFilter(status: .queued, owner: "tenant")] {
            for after in [nil, cursor] {
                let query = PostgresJobListQuery(filter: filter, limit: 100, after: after)
                let text = try genericPlan(query.sql, query.parameters)
                #expect(text.contains("Index") && !text.contains("Seq Scan on jobs"), "\(filter): \(text)")
                func reads(_ index: String) -> Bool { text.contains("using \(index) on jobs") || text.contains("Bitmap Index Scan on \(index) ") }
                if filter.owner == nil, let names = indexes[filter.status] {
                    #expect(names.contains(where: reads), "\(filter): \(text)")
                }
                // Without a status, the jobs that are not running come in order from the
                // indexes that leave running jobs out (schema 9), the running ones from theirs.
                if filter.status == nil, filter.owner == nil {
                    #expect((reads("jobs_by_created") || reads("jobs_by_kind")) && reads("jobs_running_by_node"), "\(filter): \(text)")
                }
            }
        }
        // The jobs a node watches, read again together: each by its key, however many, in the
        // generic plan and in one made for 300 IDs.
        let watched = try connection.query("SELECT id FROM jobs ORDER BY created_at DESC LIMIT 300").map { try $0.string("id") }
        let genericByIDs = try genericPlan(PostgresJobStore.jobsByIDsSQL, [PostgresArray(watched)])
        try connection.execute("SET plan_cache_mode = auto")
        for byIDs in [genericByIDs, try plan(PostgresJobStore.jobsByIDsSQL, [PostgresArray(watched)])] {
            #expect(byIDs.contains("jobs_pkey") && !byIDs.contains("Seq Scan"), "\(byIDs)")
        }
        for name in ["jobs_by_status", "jobs_by_created", "jobs_by_kind"] {
            let definition = try connection.query("SELECT indexdef FROM pg_indexes WHERE indexname = $1", [name]).first?.string("indexdef")
            #expect(definition?.hasSuffix("WHERE (status <> 'running'::text)") == true, "\(name): \(definition ?? "missing")")
        }
        let unfinished = try plan(PostgresJobStore.unfinishedJobsSQL)
        #expect(!unfinished.contains("Seq Scan on jobs"), "\(unfinished)")
        let expired = try plan("""
            SELECT created_at, id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < 100 ORDER BY finished_at, created_at, id LIMIT 10
            """)
        #expect(expired.contains("jobs_by_finished"), "\(expired)")
        let due = try plan("SELECT id FROM jobs WHERE status IN ('queued', 'scheduled') ORDER BY due_key LIMIT 10")
        #expect(due.contains("jobs_due"), "\(due)")
        let key = try plan("SELECT id FROM jobs WHERE coalesce(owner, '') = '' AND idempotency_key = 'k' AND NOT idempotency_retired")
        #expect(key.contains("jobs_by_idempotency_key"), "\(key)")
    }

    private static func describe(_ event: WebhookEventRecord) -> String {
        "\(event.jobID) \(event.webhookID) \(event.url) \(event.key) \(event.body) \(event.state) \(event.roundStart) \(String(describing: event.nextAttemptAt)) \(event.attempts)"
    }
}
