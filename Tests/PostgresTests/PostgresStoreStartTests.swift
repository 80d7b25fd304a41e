import Foundation
import JobCore
import Postgres
import PostgresTestSupport
import StoreTestSupport
import Testing
@testable import PostgresStore

/// What a start reads, how the schema is checked and migrated, and what happens while the
/// database is away.
@Suite("PostgreSQL store start, schema versions, availability", .needsPostgres)
struct PostgresStoreStartTests {
    @Test("jobs, attempts and webhook events round-trip across a restart; a restart reads only unfinished jobs")
    func restart() throws {
        let database = try TestDatabase()
        let id = JobID()
        let created = Date(timeIntervalSince1970: 1_795_000_000.123456)
        let key = JobKey(id: id, createdAt: created)
        let live = [makeJob(createdAt: epoch), makeJob(status: .scheduled, createdAt: epoch.addingTimeInterval(1)),
                    makeJob(kind: "fetch_url", owner: "tenant", createdAt: epoch.addingTimeInterval(2))]
        do {
            let store = try database.open()
            defer { store.close() }
            try write(store, .submitted([JobRecord(
                id: id, kind: "write_code", input: .object(["name": .string("alex")]), status: .queued,
                createdAt: created, webhook: WebhookTarget(url: "https://example.com/h", key: [1, 2, 3]))])).get()
            try write(store, .submitted(live)).get()
            try write(store, .started(live[2].key, attempt: 1, at: epoch)).get()
            try write(store, .started(key, attempt: 1, at: created)).get()
            let event = WebhookEventRecord(jobID: id, webhookID: "msg_1", url: "https://example.com/h", key: [1, 2, 3], body: Array("{}".utf8))
            try write(store, .finished(key, attempt: 1, startedAt: created, status: .succeeded, result: .integer(7), error: nil,
                                       at: created, event: event, owner: nil, kind: "write_code")).get()
            let attempt = DeliveryAttempt(number: 1, startedAt: created, duration: .milliseconds(12), status: 500, error: nil,
                                          nextAttemptAt: created.addingTimeInterval(5))
            try write(store, .webhookAttempted(id, attempt: attempt, state: .pending, nextAttemptAt: attempt.nextAttemptAt)).get()
        }
        // Finished jobs straight into the table, as a long history would leave them.
        let connection = try database.connection()
        defer { connection.close() }
        try connection.execute("""
            INSERT INTO jobs (id, created_at, kind, status, input, result, started_at, finished_at, attempt, max_attempts)
            SELECT gen_random_uuid(), i, 'write_code', CASE WHEN i <= 200 THEN 'failed' ELSE 'succeeded' END, '{}', '{}', i, i, 1, 3
            FROM generate_series(1, 20000) AS i
            """)

        let store = try database.open()
        defer { store.close() }
        #expect(try store.requeueInterrupted(at: epoch) == 0, "a start recovers nothing itself")
        let state = try store.loadUnfinished()
        #expect(state.jobs.map(\.id) == live.map(\.id), "oldest first, unfinished only")
        // The first node's row went with its clean stop: the rescue, at the second's first
        // heartbeat, re-queued the job it left running.
        #expect(state.jobs.map(\.status) == [.queued, .scheduled, .queued])
        #expect(state.jobs.last?.attempt == 2)
        #expect(state.counts.values.reduce(0, +) == 20_004, "the counts cover every stored job")
        #expect(state.counts[JobCounts.Key(owner: nil, kind: "write_code", state: .failed)] == 200)
        let job = try #require(try store.job(withID: id)?.record)
        #expect(job.status == .succeeded)
        #expect(job.result == .integer(7))
        #expect(job.createdAt == created, "microsecond timestamps round-trip exactly")
        #expect(job.webhook?.key == [1, 2, 3])
        // A start loads no pending event: the first node released its own at its clean stop, and
        // this one takes it with its claim pass, attempts and all.
        #expect(state.webhookEvents.isEmpty, "a starting node holds no events yet")
        let event = try #require(try store.claimWebhookEvents(limit: 10).first)
        #expect(event.webhookID == "msg_1")
        #expect(event.body == Array("{}".utf8))
        #expect(event.key == [1, 2, 3])
        #expect(event.attempts.map(\.status) == [500])
        let outcomes = try connection.query("SELECT outcome FROM job_attempt_history WHERE job_id = $1::uuid", [live[2].id.description])
        #expect(try outcomes.map { try $0.string("outcome") } == ["lost"])
    }

    @Test("retention deletes in batches, oldest finished first, passing over pending webhooks")
    func retentionBatches() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        var jobs: [JobRecord] = []
        for index in 0..<25 { jobs.append(makeJob(createdAt: epoch.addingTimeInterval(Double(index)))) }
        try write(store, .submitted(jobs)).get()
        for (index, job) in jobs.enumerated() {
            let event = index == 3 ? WebhookEventRecord(jobID: job.id, webhookID: "msg", url: "https://example.com/", key: [1], body: [1]) : nil
            try write(store, .finished(job.key, attempt: 1, startedAt: nil, status: .succeeded, result: .null, error: nil,
                                       at: epoch.addingTimeInterval(100 + Double(index)), event: event, owner: job.owner, kind: job.kind)).get()
        }
        var deleted: [JobID] = []
        while true {
            let batch = try store.expiredJobs(finishedBefore: epoch.addingTimeInterval(1000), limit: 10)
            guard !batch.isEmpty else { break }
            #expect(batch.count <= 10)
            try write(store, .purged(batch.map(\.key))).get()
            deleted += batch.map(\.key.id)
        }
        #expect(deleted == jobs.enumerated().filter { $0.offset != 3 }.map(\.element.id), "oldest first; the pending webhook's job stays")
        #expect(try store.loadUnfinished().counts == [JobCounts.Key(owner: nil, kind: "write_code", state: .succeeded): 1])
        try write(store, .webhookAttempted(jobs[3].id, attempt: DeliveryAttempt(number: 1, startedAt: epoch, duration: .zero, status: 200,
                                                                                error: nil, nextAttemptAt: nil),
                                           state: .delivered, nextAttemptAt: nil)).get()
        #expect(try store.expiredJobs(finishedBefore: epoch.addingTimeInterval(1000), limit: 10).map(\.key.id) == [jobs[3].id])
    }

    @Test("a new database is migrated; the version table records the version and the oldest compatible one")
    func migratesEmptyDatabase() throws {
        let database = try TestDatabase(empty: true)
        let store = try database.open()
        store.close()
        let connection = try database.connection()
        defer { connection.close() }
        let row = try #require(try connection.query("SELECT version, compatible_from FROM jobpool_schema").first)
        #expect(try row.int("version") == PostgresSchema.currentVersion)
        #expect(try row.int("compatible_from") <= PostgresSchema.currentVersion)
        let options = try connection.query("SELECT array_to_string(reloptions, ',') AS o FROM pg_class WHERE relname = 'jobs'")
        #expect(try options.first?.string("o").contains("autovacuum_vacuum_scale_factor=0.01") == true)
    }

    @Test("a schema one version newer that still works with this one is used; two versions newer is refused")
    func newerSchema() throws {
        let database = try TestDatabase()
        let connection = try database.connection()
        defer { connection.close() }
        let current = PostgresSchema.currentVersion
        try connection.execute("UPDATE jobpool_schema SET version = $1::int, compatible_from = $2::int", [current + 1, current])
        let store = try database.open()
        store.close()
        try connection.execute("UPDATE jobpool_schema SET version = $1::int, compatible_from = $2::int", [current + 1, current + 1])
        #expect { _ = try database.open() } throws: { "\($0)".contains("newer jobpool") }
        try connection.execute("UPDATE jobpool_schema SET version = $1::int, compatible_from = $2::int", [current + 2, current])
        #expect { _ = try database.open() } throws: { error in
            "\(error)".contains("schema version \(current + 2)") && "\(error)".contains("newer jobpool")
        }
    }

    @Test("two stores (two nodes) start on one database, each with a node row of its own")
    func twoNodesPerDatabase() throws {
        let database = try TestDatabase()
        let first = try database.open()
        defer { first.close() }
        let second = try database.open()
        defer { second.close() }
        #expect(eventually { first.cluster?.liveNodes == 2 || second.cluster?.liveNodes == 2 })
        #expect(first.cluster?.nodeID != second.cluster?.nodeID)
        try write(first, .submitted([makeJob(createdAt: epoch)])).get()
        try write(second, .submitted([makeJob(createdAt: epoch.addingTimeInterval(1))])).get()
        #expect(try first.loadUnfinished().jobs.count == 2)
    }

    @Test("a start against an unreachable database fails with a clear message and no password")
    func unreachable() throws {
        let url = "postgresql://jobpool:s3cret-pass@/jobs?host=/nonexistent-jobpool-folder"
        #expect { _ = try PostgresJobStore(url: url, logger: quietLogger) } throws: { error in
            let text = "\(error)"
            return text.contains("cannot connect") && text.contains("jobpool:***@") && !text.contains("s3cret")
        }
    }

    @Test("while the database refuses connections the store is not writable and submissions fail; then it recovers")
    func databaseAway() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        try write(store, .submitted([makeJob(createdAt: epoch)])).get()
        #expect(store.isWritable)
        let admin = try PostgresConnection(connectingTo: PostgresConnectionString(
            database.url.replacingOccurrences(of: "/\(database.name)?", with: "/postgres?")))
        defer { admin.close() }
        try admin.execute("ALTER DATABASE \(database.name) ALLOW_CONNECTIONS false")
        try admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [database.name])
        #expect(eventually { !store.isWritable }, "the idle writer's health check noticed")
        guard case .failure(let error) = try write(store, .submitted([makeJob(createdAt: epoch.addingTimeInterval(1))])) else {
            Issue.record("a submission was acknowledged while the database was away")
            return
        }
        #expect(error.message.contains("cannot write"), "\(error)")
        // A state change waits for the database instead of being dropped.
        let started = makeJob(createdAt: epoch.addingTimeInterval(2))
        try admin.execute("ALTER DATABASE \(database.name) ALLOW_CONNECTIONS true")
        #expect(eventually { store.isWritable }, "the store reconnected by itself")
        try write(store, .submitted([started])).get()
        #expect(try store.job(withID: started.id) != nil, "reads work again too")
    }
}
