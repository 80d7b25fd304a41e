import Foundation
import JobCore
import Postgres
import StoreTestSupport
import Synchronization
import Testing
@testable import PostgresStore

/// The rescue of a dead node's running jobs, and the fencing of that node's late writes: two
/// stores on one database stand for two nodes.
@Suite("PostgreSQL rescue and fencing across nodes", .needsPostgres)
struct PostgresRescueTests {
    /// Heartbeats far apart: a test moves the leases itself, with SQL.
    static let lease = NodeLeaseSettings(heartbeat: .seconds(60), lease: .seconds(180))

    /// Two nodes on one new database, with `jobs` submitted and started (claimed) on the first.
    private func twoNodes(_ jobs: [JobRecord]) throws -> (TestDatabase, PostgresJobStore, PostgresJobStore, PostgresConnection) {
        let database = try TestDatabase()
        let nodeA = try database.open(lease: Self.lease)
        let nodeB = try database.open(lease: Self.lease)
        try write(nodeA, .submitted(jobs)).get()
        for job in jobs { try write(nodeA, .started(job.key, attempt: 1, at: epoch)).get() }
        return (database, nodeA, nodeB, try database.connection())
    }

    /// Ends a node's lease by the database's clock, as if it had stopped renewing it.
    private func expireLease(of store: PostgresJobStore, on connection: PostgresConnection) throws {
        let nodeID = try #require(store.cluster?.nodeID)
        #expect(try connection.execute("UPDATE nodes SET lease_until = now() - interval '1 second' WHERE id = $1::uuid", [nodeID]) == 1)
    }

    private func outcomes(_ job: JobRecord, _ connection: PostgresConnection) throws -> [String] {
        try connection.query("SELECT attempt || ':' || outcome AS o FROM job_attempt_history WHERE job_id = $1::uuid ORDER BY attempt",
                             [job.id.description]).map { try $0.string("o") }
    }

    @Test("a dead node's job is re-queued by another node's sweep as attempt 2, attempt 1 recorded lost; the dead node's late finish changes nothing and is reported stale")
    func rescueAndFence() throws {
        let job = makeJob(createdAt: epoch)
        let (database, nodeA, nodeB, connection) = try twoNodes([job])
        defer { nodeA.close(); nodeB.close(); connection.close(); withExtendedLifetime(database) {} }
        let other = makeJob(createdAt: epoch.addingTimeInterval(1))
        try write(nodeB, .submitted([other])).get()
        try write(nodeB, .started(other.key, attempt: 1, at: epoch)).get()

        #expect(try nodeB.rescueExpired(on: connection).isEmpty, "both leases hold: nothing to rescue")
        try expireLease(of: nodeA, on: connection)
        let rescued = try nodeB.rescueExpired(on: connection)
        #expect(rescued.map(\.id) == [job.id], "only the dead node's job; the live node's stays running")
        let stored = try #require(try nodeB.job(withID: job.id)?.record)
        #expect(stored.status == .queued)
        #expect(stored.attempt == 2)
        #expect(try outcomes(job, connection) == ["1:lost"])
        #expect(try nodeB.job(withID: other.id)?.record.status == .running)
        #expect(try connection.query("SELECT count(*) AS n FROM nodes").first?.int("n") == 1, "the expired node row is deleted")

        let late = StoreChange.finished(job.key, attempt: 1, startedAt: epoch, status: .succeeded, result: .integer(1), error: nil,
                                        at: epoch.addingTimeInterval(5),
                                        event: WebhookEventRecord(jobID: job.id, webhookID: "msg_late", url: "https://example.com/", key: [1],
                                                                  body: [1]), owner: job.owner, kind: job.kind)
        #expect(try writeIsStale(nodeA, late), "the dead node's finish is refused and reported stale")
        let after = try #require(try nodeB.job(withID: job.id)?.record)
        #expect(after.status == .queued && after.attempt == 2 && after.result == nil)
        #expect(try nodeB.webhookEvent(of: job.id) == nil, "a stale finish writes no webhook event")
        #expect(try outcomes(job, connection) == ["1:lost"])
    }

    @Test("a dead node's job whose row the sweeping node cannot read is rescued all the same, and the others with it")
    func unreadableRowRescued() throws {
        let jobs = [makeJob(createdAt: epoch), makeJob(createdAt: epoch.addingTimeInterval(1))]
        let (database, nodeA, nodeB, connection) = try twoNodes(jobs)
        defer { nodeA.close(); nodeB.close(); connection.close(); withExtendedLifetime(database) {} }
        // As if a newer schema had changed a column this node reads (a key's flag it requires is NULL).
        try connection.execute("ALTER TABLE jobs ALTER COLUMN webhook_secret_generated DROP NOT NULL")
        try connection.execute("UPDATE jobs SET idempotency_key = 'k', webhook_secret_generated = NULL WHERE id = $1::uuid",
                               [jobs[0].id.description])
        try expireLease(of: nodeA, on: connection)
        #expect(try nodeB.rescueExpired(on: connection).map(\.id) == [jobs[1].id], "the readable one is announced")
        let rows = try connection.query("SELECT status || ':' || attempt AS s FROM jobs ORDER BY created_at").map { try $0.string("s") }
        #expect(rows == ["queued:2", "queued:2"], "both are rescued: the sweep did not roll back")
        #expect(try outcomes(jobs[0], connection) == ["1:lost"])
    }

    @Test("a node whose lease expired writes nothing about its jobs even before any sweep")
    func lapsedLeaseIsFenced() throws {
        let job = makeJob(createdAt: epoch)
        let (database, nodeA, nodeB, connection) = try twoNodes([job])
        defer { nodeA.close(); nodeB.close(); connection.close(); withExtendedLifetime(database) {} }
        try expireLease(of: nodeA, on: connection)
        #expect(try writeIsStale(nodeA, .retrying(job.key, attempt: 1, startedAt: epoch, error: JobFailure(code: "x", message: "y"),
                                                  at: epoch, nextAttemptAt: epoch)))
        #expect(try writeIsStale(nodeA, .requeued(job.key, attempt: 1, interrupted: nil)))
        #expect(try nodeB.job(withID: job.id)?.record.status == .running, "left for the rescue")
    }

    @Test("a job out of attempts fails with node_lost instead")
    func outOfAttempts() throws {
        var job = makeJob(createdAt: epoch)
        job.options.maxAttempts = 1
        let (database, nodeA, nodeB, connection) = try twoNodes([job])
        defer { nodeA.close(); nodeB.close(); connection.close(); withExtendedLifetime(database) {} }
        try expireLease(of: nodeA, on: connection)
        let rescued = try nodeB.rescueExpired(on: connection)
        #expect(rescued.map(\.status) == [.failed])
        let stored = try #require(try nodeB.job(withID: job.id)?.record)
        #expect(stored.status == .failed)
        #expect(stored.attempt == 1)
        #expect(stored.error?.code == "node_lost")
        #expect(stored.error?.message.contains("max_attempts") == true)
        #expect(stored.finishedAt != nil)
        #expect(try outcomes(job, connection) == ["1:lost"])
        #expect(try nodeB.loadUnfinished().counts[JobCounts.Key(owner: nil, kind: "write_code", state: .failed)] == 1,
                "counted as failed")
    }

    @Test("a job row held by an open transaction is skipped by the sweep, which neither waits nor stops the other rescues; the next sweep takes it")
    func sweepSkipsAHeldRow() throws {
        let held = makeJob(createdAt: epoch)
        let free = makeJob(createdAt: epoch.addingTimeInterval(1))
        let (database, nodeA, nodeB, connection) = try twoNodes([held, free])
        defer { nodeA.close(); nodeB.close(); connection.close(); withExtendedLifetime(database) {} }
        try expireLease(of: nodeA, on: connection)
        let holder = try database.connection()
        defer { holder.close() }
        try holder.execute("BEGIN")
        _ = try holder.query("SELECT id FROM jobs WHERE id = $1::uuid FOR UPDATE", [held.id.description])
        let sweeper = try database.connection()
        defer { sweeper.close() }
        let outcome = Mutex<Result<[JobID], any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let result = Result { try nodeB.rescueExpired(on: sweeper).map(\.id) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        let returned = done.wait(timeout: .now() + 10) == .success
        try holder.execute("ROLLBACK") // lets a sweep that still waits finish
        #expect(returned, "the sweep returned while the row was held (it runs on the heartbeat's connection)")
        if !returned { _ = done.wait(timeout: .now() + 10) }
        #expect(try outcome.withLock { $0 }?.get() == [free.id], "the free job rescued, the held one skipped")
        #expect(try nodeB.rescueExpired(on: sweeper).map(\.id) == [held.id], "the next sweep, with the row free, rescues it")
    }

    @Test("two sweeps at once rescue each job once")
    func oneSweepAtATime() throws {
        let jobs = (0..<60).map { makeJob(createdAt: epoch.addingTimeInterval(Double($0))) }
        let (database, nodeA, nodeB, connection) = try twoNodes(jobs)
        defer { nodeA.close(); nodeB.close(); connection.close(); withExtendedLifetime(database) {} }
        try expireLease(of: nodeA, on: connection)
        let second = try database.connection()
        defer { second.close() }
        let rescued = Mutex<[JobID]>([])
        let group = DispatchGroup()
        for (store, sweeper) in [(nodeA, connection), (nodeB, second)] {
            DispatchQueue.global().async(group: group) {
                let ids = (try? store.rescueExpired(on: sweeper).map(\.id)) ?? []
                rescued.withLock { $0 += ids }
            }
        }
        #expect(group.wait(timeout: .now() + 20) == .success)
        let all = rescued.withLock { $0 }
        #expect(all.count == jobs.count)
        #expect(Set(all) == Set(jobs.map(\.id)), "every job rescued, none twice")
        let attempts = try connection.query("SELECT DISTINCT attempt FROM jobs").map { try $0.int("attempt") }
        #expect(attempts == [2], "each job moved on by exactly one attempt")
        #expect(try connection.query("SELECT count(*) AS n FROM job_attempts WHERE outcome = 'lost'").first?.int("n") == jobs.count)
    }
}
