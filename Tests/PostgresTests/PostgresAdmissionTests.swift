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
        let store = try database.open(lease: Self.lease)
        defer { store.close() }
        let connection = try database.connection()
        defer { connection.close() }
        store.claimer.attach(WorkQueueHost(freeWorkers: { 0 }, wakeWorkers: {}, makeJob: { _ in nil }, waitingJobs: { [] },
                                           claimedElsewhere: { _ in }, maxQueued: 5))
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

    @Test("a counter that went back (another database under the same node) is no bound")
    func counterGoingBackIsNoBound() {
        let bound = AdmissionBound()
        #expect(bound.queuedAtMost(entered: 10) == nil, "never counted")
        bound.record(queued: 4, entered: 10)
        #expect(bound.queuedAtMost(entered: 10) == 4)
        #expect(bound.queuedAtMost(entered: 13) == 7)
        #expect(bound.queuedAtMost(entered: 9) == nil)
        bound.record(queued: .max - 1, entered: 0)
        #expect(bound.queuedAtMost(entered: 5) == nil, "a bound past Int.max is none")
    }
}
