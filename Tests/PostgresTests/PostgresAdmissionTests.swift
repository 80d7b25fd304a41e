import Foundation
import Postgres
import StoreTestSupport
import Testing
@testable import JobCore
@testable import PostgresStore

/// The queue limits between counts of the queue (schema 9): `job_admissions.entered` counts
/// every job that enters `queued`, and a submission is admitted on the bound it gives while
/// that leaves room, and counted exactly when it does not.
@Suite("PostgreSQL admissions (the queue limit's counter)", .needsPostgres)
struct PostgresAdmissionTests {
    static let lease = NodeLeaseSettings(heartbeat: .milliseconds(100), lease: .seconds(10))

    func entered(_ connection: PostgresConnection) throws -> Int {
        try connection.query("SELECT entered FROM job_admissions").first?.int("entered") ?? -1
    }

    @Test("the counter grows by every job that enters queued (submitted, handed back, rescued), and by nothing else")
    func counterCountsEveryWayIntoTheQueue() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: Self.lease)
        defer { store.close() }
        let connection = try database.connection()
        defer { connection.close() }
        let node = try #require(store.cluster?.nodeID)
        let jobs = (0..<4).map { makeJob(createdAt: epoch.addingTimeInterval(Double($0))) }
        try write(store, .submitted(jobs + [makeJob(status: .scheduled, createdAt: epoch)])).get()
        #expect(try entered(connection) == 4, "four queued, one scheduled")

        // Claimed by this node: out of the queue, which the counter does not take off.
        let claimed = try connection.query("""
            UPDATE jobs SET status = 'running', node = $1::uuid, started_at = 1 WHERE id = ANY($2::uuid[]) RETURNING id
            """, [node, PostgresArray(jobs[0..<3].map(\.id.description))])
        #expect(claimed.count == 3)
        for job in jobs[0..<3] { store.claims.record(job.id, ClaimTokens.Token(attempt: 1, node: node)) }
        #expect(try entered(connection) == 4)

        // Handed back by a drain: queued again.
        try write(store, .requeued(jobs[0].key, attempt: 1, interrupted: nil)).get()
        #expect(try entered(connection) == 5)

        // Finished, and cancelled while queued: out of the queue, uncounted.
        try write(store, .finished(jobs[1].key, attempt: 1, startedAt: epoch, status: .succeeded, result: .null, error: nil,
                                   at: epoch, event: nil, owner: nil, kind: "write_code")).get()
        try write(store, .finished(jobs[3].key, attempt: 1, startedAt: nil, status: .cancelled, result: nil,
                                   error: JobFailure(code: "cancelled", message: "Cancelled."), at: epoch, event: nil, owner: nil,
                                   kind: "write_code")).get()
        #expect(try entered(connection) == 5)

        // A dead node's running job, rescued back into the queue.
        try connection.execute("UPDATE jobs SET node = gen_random_uuid() WHERE id = $1::uuid", [jobs[2].id.description])
        let rescued = try store.rescueExpired(on: connection)
        #expect(rescued.map(\.id) == [jobs[2].id] && rescued.first?.status == .queued)
        #expect(try entered(connection) == 6)
    }

    @Test("a submission past --max-queued is refused exactly, whether the bound or a count of the queue decides")
    func limitHoldsOnTheBound() throws {
        let database = try TestDatabase()
        let store = try limitedStore(database, maxQueued: 5)
        defer { store.close() }
        let connection = try database.connection()
        defer { connection.close() }
        func submit(_ count: Int) throws -> Result<Void, StoreError> {
            try write(store, .submitted((0..<count).map { _ in makeJob(createdAt: epoch) }))
        }
        func queuedAtMost() throws -> Int? { store.admissionBound.queuedAtMost(entered: Int64(try entered(connection))) }

        try submit(3).get()
        #expect(try queuedAtMost() == 3, "the first submission counted an empty queue")
        try submit(2).get()
        #expect(try queuedAtMost() == 5, "admitted on the bound (0 counted, 5 entered since), not counted again")
        let refused = try submit(1)
        #expect(throws: StoreError.self) { try refused.get() }
        guard case .failure(let error) = refused else { return }
        #expect(error.queueLimit == .queueFull(limit: 5))
        #expect(try connection.query("SELECT count(*) AS n FROM jobs").first?.int("n") == 5, "the refused job does not exist")

        // Two places freed: the bound no longer leaves room, the count does.
        try connection.execute("UPDATE jobs SET status = 'cancelled', finished_at = 1 WHERE id IN (SELECT id FROM jobs LIMIT 2)")
        #expect(try queuedAtMost() == 5)
        try submit(2).get()
        #expect(try queuedAtMost() == 5, "counted again: 3 queued, then 2 admitted")
        #expect(throws: StoreError.self) { try submit(1).get() }
    }

    /// A store whose pool allows `maxQueued` waiting jobs, and a plain connection beside it.
    func limitedStore(_ database: TestDatabase, maxQueued: Int) throws -> PostgresJobStore {
        let store = try database.open(lease: Self.lease)
        store.claimer.attach(WorkQueueHost(freeWorkers: { 0 }, wakeWorkers: {}, makeJob: { _ in nil }, waitingJobs: { [] },
                                           claimedElsewhere: { _ in }, maxQueued: maxQueued))
        return store
    }

    @Test("between counts, a submission is admitted on the counter's bound, without counting the queue")
    func boundIsUsedBetweenCounts() throws {
        let database = try TestDatabase()
        let store = try limitedStore(database, maxQueued: 5)
        defer { store.close() }
        let connection = try database.connection()
        defer { connection.close() }
        try write(store, .submitted([makeJob(createdAt: epoch)])).get()
        // Two jobs queued behind the triggers' back: the counter does not know them, a count would.
        try connection.execute("BEGIN")
        try connection.execute("SET LOCAL session_replication_role = replica")
        try connection.execute("""
            INSERT INTO jobs (id, created_at, kind, status, input, attempt, max_attempts)
            SELECT gen_random_uuid(), i, 'write_code', 'queued', '{}', 1, 1 FROM generate_series(1, 2) i
            """)
        try connection.execute("COMMIT")
        // 1 + 3 fits the bound; a count (3 queued) would refuse it.
        try write(store, .submitted((0..<3).map { _ in makeJob(createdAt: epoch) })).get()
        #expect(try connection.query("SELECT count(*) AS n FROM jobs WHERE status = 'queued'").first?.int("n") == 6)
        // The bound (4) has no room for two more: counted (6), and refused.
        #expect(throws: StoreError.self) { try write(store, .submitted([makeJob(createdAt: epoch), makeJob(createdAt: epoch)])).get() }
    }

    @Test("a batch whose jobs do not all fit the bound is counted, so that no submission of it is refused on the bound")
    func batchBeyondTheBoundIsCounted() throws {
        let database = try TestDatabase()
        let store = try limitedStore(database, maxQueued: 10)
        defer { store.close() }
        let connection = try database.connection()
        defer { connection.close() }
        try write(store, .submitted((0..<5).map { _ in makeJob(createdAt: epoch) })).get()
        try connection.execute("UPDATE jobs SET status = 'cancelled', finished_at = 1 WHERE id IN (SELECT id FROM jobs LIMIT 4)")
        // One queued, the bound says 5. The held submission (1 job) goes in on the bound (6);
        // the next batch queues 6 in three submissions: 12 by the bound, 8 by a count.
        let (blocker, held) = try database.holdWriter(of: store)
        let batch = (0..<3).map { _ in submit(store, .submitted([makeJob(createdAt: epoch), makeJob(createdAt: epoch)])) }
        #expect(eventually { store.pendingWrites == 3 })
        try blocker.execute("COMMIT")
        blocker.close()
        #expect(held.wait() == .success)
        try held.result?.get()
        for pending in batch {
            #expect(pending.wait() == .success)
            #expect(throws: Never.self) { try pending.result?.get() }
        }
        #expect(try connection.query("SELECT count(*) AS n FROM jobs WHERE status = 'queued'").first?.int("n") == 8)
    }

    @Test("a bound is none before a count, after the counter went back, past its age, or once reset")
    func boundLifetime() {
        let bound = AdmissionBound(maximumAge: .milliseconds(200))
        #expect(bound.queuedAtMost(entered: 10) == nil, "never counted")
        bound.record(queued: 4, entered: 10)
        #expect(bound.queuedAtMost(entered: 10) == 4)
        #expect(bound.queuedAtMost(entered: 13) == 7)
        #expect(bound.queuedAtMost(entered: 9) == nil, "the counter went back: another database")
        #expect(eventually { bound.queuedAtMost(entered: 10) == nil }, "too old")
        bound.record(queued: 4, entered: 10)
        bound.reset()
        #expect(bound.queuedAtMost(entered: 10) == nil, "a writer reconnected")
        bound.record(queued: .max - 1, entered: 0)
        #expect(bound.queuedAtMost(entered: 5) == nil, "a bound past Int.max is none")
    }
}
