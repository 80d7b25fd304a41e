import Foundation
import Postgres
import StoreTestSupport
import Synchronization
import Testing
@testable import JobCore
@testable import PostgresStore

/// Claims from the table: as many as there are free workers, in `due_key` order, each job by
/// one claimer however many claim at once, and the claim is the start (running, node, time).
@Suite("PostgreSQL claims (FOR UPDATE SKIP LOCKED)", .needsPostgres)
struct PostgresClaimTests {
    static let lease = NodeLeaseSettings(heartbeat: .milliseconds(100), lease: .seconds(10))
    /// A claim looks only a little past the database's now (``PostgresWorkQueue/claimHorizonMicros``),
    /// so claimed jobs are made in the past, not at the fixed `epoch` the other tests use.
    static let anHourAgo = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 3600).rounded())

    /// A claimer beside `store`, under the store's node lease.
    func claimer(_ store: PostgresJobStore, _ database: TestDatabase) -> PostgresWorkQueue {
        let queue = PostgresWorkQueue(target: PostgresConnectionString(database.url), lease: store.lease, logger: quietLogger) { _ in }
        queue.start()
        return queue
    }

    /// A host whose free workers are `free`, making jobs straight from the records.
    final class Host: Sendable {
        let free: Int
        let claimed = Mutex<[JobID]>([])
        init(free: Int) { self.free = free }

        var value: WorkQueueHost {
            WorkQueueHost(freeWorkers: { [free] in free }, wakeWorkers: {}, makeJob: { [self] record in
                claimed.withLock { $0.append(record.id) }
                return Job(restoring: record, webhookStatus: nil, onStateChange: nil, work: { _ throws(JobFailure) in .null })
            }, waitingJobs: { [] }, claimedElsewhere: { _ in })
        }
    }

    /// Inserts `count` queued jobs straight into the table, created at 1…`count` µs since 1970.
    func insertQueuedJobs(_ count: Int, on connection: PostgresConnection) throws {
        try connection.execute("""
            INSERT INTO jobs (id, created_at, kind, status, input, attempt, max_attempts)
            SELECT gen_random_uuid(), i, 'write_code', 'queued', '{}', 1, 1 FROM generate_series(1, $1::int) i
            """, [count])
    }

    @Test("a claim takes only as many due jobs as there are free workers, highest priority first, and records the start")
    func claimsForFreeWorkers() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.lease)
        defer { store.close() }
        var jobs = (0..<5).map { makeJob(createdAt: Self.anHourAgo.addingTimeInterval(Double($0))) }
        jobs[3].options.priority = 5
        var later = makeJob(status: .scheduled, createdAt: Self.anHourAgo.addingTimeInterval(10))
        later.nextAttemptAt = Date().addingTimeInterval(3600)
        later.options.priority = 100
        try write(store, .submitted(jobs + [later])).get()
        let host = Host(free: 2)
        let queue = claimer(store, database)
        defer { queue.stop() }
        queue.attach(host.value)
        #expect(eventually { host.claimed.withLock { $0.count } == 2 })
        #expect(host.claimed.withLock { $0 } == [jobs[3].id, jobs[0].id], "by due_key: the priority 5 job first; the future one waits")
        let connection = try database.connection()
        defer { connection.close() }
        let rows = try connection.query("SELECT id, node::text AS node FROM jobs WHERE status = 'running' ORDER BY id")
        #expect(rows.count == 2)
        #expect(try rows.allSatisfy { try $0.string("node") == store.cluster?.nodeID })
        // The buffer is full (2 of 2 free): nothing more is claimed until the pool pops.
        #expect(queue.hasClaimableWork)
        #expect(queue.claimNext(now: Date())?.id == jobs[3].id)
        queue.workerFreed()
        #expect(eventually { host.claimed.withLock { $0.count } == 3 })
    }

    @Test("claimed rows this node cannot read are handed back, scheduled a minute later, their values kept out of the row; the rest run")
    func unreadableRowsHandedBack() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.lease)
        defer { store.close() }
        let jobs = (0..<4).map { makeJob(createdAt: Self.anHourAgo.addingTimeInterval(Double($0))) }
        try write(store, .submitted(jobs)).get()
        let connection = try database.connection()
        defer { connection.close() }
        // As if a newer schema had changed a column this node reads: two rows cannot be decoded
        // (a key's flag that this node requires is NULL).
        let unreadable = [jobs[1].id.description, jobs[2].id.description]
        try connection.execute("ALTER TABLE jobs ALTER COLUMN webhook_secret_generated DROP NOT NULL")
        try connection.execute("""
            UPDATE jobs SET idempotency_key = 'key-' || id, webhook_secret_generated = NULL WHERE id = ANY($1::uuid[])
            """, [PostgresArray(unreadable)])
        let host = Host(free: 4)
        let queue = claimer(store, database)
        defer { queue.stop() }
        queue.attach(host.value)
        #expect(eventually { host.claimed.withLock { $0.count } == 2 })
        #expect(Set(host.claimed.withLock { $0 }) == [jobs[0].id, jobs[3].id], "the readable rows run")
        #expect(eventually {
            (try? connection.query("SELECT count(*) AS n FROM jobs WHERE status = 'scheduled' AND id = ANY($1::uuid[])",
                                   [PostgresArray(unreadable)]).first?.int("n")) == 2
        })
        let rows = try connection.query("""
            SELECT node, started_at, error_code, error_message, attempt,
                   next_attempt_at - (extract(epoch FROM now()) * 1000000)::bigint AS wait_us
            FROM jobs WHERE id = ANY($1::uuid[])
            """, [PostgresArray(unreadable)])
        for row in rows {
            #expect(try row.optionalString("node") == nil && row.optionalInt64("started_at") == nil)
            #expect(try row.int("attempt") == 1, "its attempt is not spent")
            #expect(try row.optionalString("error_code") == nil && row.optionalString("error_message") == nil,
                    "the decoding error (which quotes the row's values) stays in the log")
            let wait = try row.int64("wait_us")
            #expect(wait > 50_000_000 && wait <= 60_000_000, "claimable again in about a minute, not at the next claim: \(wait) µs")
        }
        #expect(try connection.query("SELECT count(*) AS n FROM jobs WHERE status = 'running'").first?.int("n") == 2)
        #expect(queue.pendingHandBacks(adding: []).isEmpty, "nothing left to hand back")
    }

    @Test("a claim walks jobs_due in order even before the table has statistics")
    func claimPlanIgnoresMissingStatistics() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.lease)
        store.close()
        let setup = try database.connection()
        defer { setup.close() }
        // A new database: a backlog arrives before any ANALYZE (none may run during the test).
        // Left to itself, the planner then guesses a few rows and reads them with a bitmap
        // scan and a sort (checked by hand on PostgreSQL 15).
        try setup.execute("ALTER TABLE jobs SET (autovacuum_enabled = false)")
        try insertQueuedJobs(5000, on: setup)
        let claimer = try PostgresWorkQueue.claimerConnection(to: PostgresConnectionString(database.url))
        defer { claimer.close() }
        let plan = try claimer.query("EXPLAIN " + PostgresWorkQueue.claimSQL, [UUID().uuidString.lowercased(), 40])
            .map { try $0.string("QUERY PLAN") }.joined(separator: "\n")
        // A bitmap scan would read every queued job, and every entry claims left dead, to sort
        // them for 40 rows; the ordered index scan stops after 40. (The events the claim logs
        // are sorted later, in their own CTE: those are the claimed rows alone.)
        let read = try #require(plan.components(separatedBy: "CTE claimed").first)
        #expect(read.contains("Index Scan using jobs_due"), "\(plan)")
        #expect(!read.contains("Bitmap") && !read.contains("Sort"), "\(plan)")
    }

    @Test("the claim's generic plan, made on a table with statistics, looks the claimed rows up by key")
    func claimGenericPlanJoinsByKey() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.lease)
        store.close()
        let setup = try database.connection()
        defer { setup.close() }
        try insertQueuedJobs(20000, on: setup)
        try setup.execute("ANALYZE jobs")
        // The generic plan guesses the LIMIT parameter at a tenth of the table; left to itself,
        // it merge-joined the claimed rows with the whole of jobs_pkey.
        let claimer = try PostgresConnection(connectingTo: PostgresConnectionString(database.url),
                                             settings: PostgresWorkQueue.sessionSettings + [(name: "plan_cache_mode", value: "force_generic_plan")])
        defer { claimer.close() }
        try claimer.executeScript("PREPARE claim(uuid, int) AS \(PostgresWorkQueue.claimSQL)")
        let plan = try claimer.query("EXPLAIN EXECUTE claim(gen_random_uuid(), 40)").map { try $0.string("QUERY PLAN") }.joined(separator: "\n")
        #expect(!plan.contains("Merge Join") && !plan.contains("Hash Join"), "\(plan)")
        #expect(plan.contains("Index Scan using jobs_pkey on jobs j") && plan.contains("Index Scan using jobs_due"), "\(plan)")
    }

    @Test("a claim stops at the horizon: jobs scheduled for tomorrow are not read, however many")
    func claimStopsAtTheHorizon() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.lease)
        store.close()
        let setup = try database.connection()
        defer { setup.close() }
        try setup.execute("""
            INSERT INTO jobs (id, created_at, kind, status, input, attempt, max_attempts, next_attempt_at)
            SELECT gen_random_uuid(), i, 'write_code', 'scheduled', '{}', 1, 1,
                   (extract(epoch FROM now() + interval '1 day') * 1000000)::bigint + i
            FROM generate_series(1, 3000) i
            """)
        let claimer = try PostgresWorkQueue.claimerConnection(to: PostgresConnectionString(database.url))
        defer { claimer.close() }
        try claimer.execute("BEGIN")
        defer { _ = try? claimer.execute("ROLLBACK") }
        let plan = try claimer.query("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + PostgresWorkQueue.claimSQL, [UUID().uuidString.lowercased(), 40])
            .map { try $0.string("QUERY PLAN") }.joined(separator: "\n")
        // Unbounded, the walk read all 3,000 and filtered each out.
        #expect(plan.contains("Index Cond: (due_key <="), "\(plan)")
        #expect(!plan.contains("Rows Removed by Filter"), "\(plan)")
    }

    @Test("a claim still takes every due job near the horizon: a low-priority retry just due, and a job from a node whose clock runs a little ahead")
    func claimReachesTheHorizon() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.lease)
        defer { store.close() }
        let now = Date()
        // Priority -10 ages the other way: its due_key is 100 s after its time.
        var lowRetry = makeJob(status: .scheduled, createdAt: now.addingTimeInterval(-60))
        lowRetry.nextAttemptAt = now.addingTimeInterval(-1)
        lowRetry.options.priority = JobOptions.priorities.lowerBound
        let aheadWithinAllowance = makeJob(createdAt: now.addingTimeInterval(240))
        let aheadBeyondAllowance = makeJob(createdAt: now.addingTimeInterval(600))
        try write(store, .submitted([lowRetry, aheadWithinAllowance, aheadBeyondAllowance])).get()
        let host = Host(free: 3)
        let queue = claimer(store, database)
        defer { queue.stop() }
        queue.attach(host.value)
        #expect(eventually { host.claimed.withLock { $0.count } == 2 })
        #expect(Set(host.claimed.withLock { $0 }) == [lowRetry.id, aheadWithinAllowance.id],
                "one pass claims every claimable job for 3 free workers; the job 10 minutes ahead waits for the database's clock")
    }

    @Test("two claimers on one table claim every job exactly once")
    func claimersShareTheTable() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.lease)
        defer { store.close() }
        let jobs = (0..<200).map { makeJob(createdAt: Self.anHourAgo.addingTimeInterval(Double($0))) }
        try write(store, .submitted(jobs)).get()
        let target = PostgresConnectionString(database.url)
        let otherLease = NodeLease(nodeID: UUID().uuidString.lowercased(), target: target, settings: Self.lease, logger: quietLogger)
        otherLease.start()
        defer { otherLease.stop() }
        let other = PostgresWorkQueue(target: target, lease: otherLease, logger: quietLogger, pollInterval: .milliseconds(20)) { _ in }
        let hosts = [Host(free: 7), Host(free: 7)]
        #expect(eventually { otherLease.isHeld && store.lease.isHeld })
        other.start()
        defer { other.stop() }
        let mine = claimer(store, database)
        defer { mine.stop() }
        mine.attach(hosts[0].value)
        other.attach(hosts[1].value)
        let queues: [any WorkQueue] = [mine, other]
        #expect(eventually(timeout: .seconds(30)) {
            for queue in queues {
                while queue.claimNext(now: Date()) != nil {}
                queue.workerFreed()
            }
            return hosts.map { $0.claimed.withLock { $0.count } }.reduce(0, +) >= 200
        })
        let first = Set(hosts[0].claimed.withLock { $0 }), second = Set(hosts[1].claimed.withLock { $0 })
        #expect(first.isDisjoint(with: second), "no job claimed twice")
        #expect(first.union(second) == Set(jobs.map(\.id)))
        #expect(hosts[0].claimed.withLock { $0.count } + hosts[1].claimed.withLock { $0.count } == 200)
    }
}
