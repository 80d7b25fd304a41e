import Foundation
import Postgres
import StoreTestSupport
import Testing
@testable import JobCore
@testable import PostgresStore

/// Claims and finishes write their own `job_events` rows and tell the log trigger to skip them
/// (schema 8), and count their own changes (schema 9); every other change is still logged and
/// counted by the triggers, as an older node's are.
@Suite("PostgreSQL event log: statements that log their own events", .needsPostgres)
struct PostgresStatementEventsTests {
    @Test("a claim and a finish log their events once each, in order; the trigger still logs the next change in the same transaction, and an unclaimed finish")
    func statementsLogOnce() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: PostgresClaimTests.lease)
        defer { store.close() }
        let start = PostgresClaimTests.anHourAgo
        let queued = makeJob(createdAt: start)
        var retry = makeJob(status: .scheduled, createdAt: start.addingTimeInterval(-60))
        retry.nextAttemptAt = start.addingTimeInterval(1)
        retry.attempt = 2
        let cancelledInTransaction = makeJob(createdAt: start.addingTimeInterval(2))
        let cancelledUnclaimed = makeJob(createdAt: start.addingTimeInterval(3))
        let cancelledAfterEmptyClaim = makeJob(createdAt: start.addingTimeInterval(4))
        try write(store, .submitted([queued, retry, cancelledInTransaction, cancelledUnclaimed, cancelledAfterEmptyClaim])).get()

        let connection = try database.connection()
        defer { connection.close() }
        let node = try #require(store.cluster?.nodeID)
        // A claim that claims nothing leaves nothing for the transaction's next change to be skipped by.
        try connection.execute("BEGIN")
        #expect(try connection.query(PostgresWorkQueue.claimSQL, [node, 0]).isEmpty)
        try connection.execute("UPDATE jobs SET status = 'cancelled', finished_at = 1 WHERE id = $1::uuid",
                               [cancelledAfterEmptyClaim.id.description])
        try connection.execute("COMMIT")
        try connection.execute("BEGIN")
        let claimed = try connection.query(PostgresWorkQueue.claimSQL, [node, 2]).map { try PostgresRowDecoding.jobID($0, "id") }
        try connection.execute("""
            UPDATE jobs SET status = 'cancelled', finished_at = 1, error_code = 'cancelled', error_message = 'by hand' WHERE id = $1::uuid
            """, [cancelledInTransaction.id.description])
        try connection.execute("COMMIT")
        #expect(Set(claimed) == [queued.id, retry.id])
        try write(store, .finished(cancelledUnclaimed.key, attempt: 1, startedAt: nil, status: .cancelled, result: nil,
                                   error: JobFailure(code: "cancelled", message: "by request"), at: Date(), event: nil,
                                   owner: nil, kind: cancelledUnclaimed.kind)).get()

        let rows = try connection.query("SELECT job_id::text AS job, event, attempt, at, error_code FROM job_events ORDER BY id")
        func events(_ job: JobRecord) throws -> [String] {
            try rows.filter { try $0.string("job") == job.id.description }.map { try $0.string("event") }
        }
        #expect(try events(queued) == ["job.created", "job.started"])
        #expect(try events(retry) == ["job.created", "job.queued", "job.started"], "a scheduled job is queued, then started")
        #expect(try events(cancelledInTransaction) == ["job.created", "job.cancelled"], "the trigger logs the statement after a claim")
        #expect(try events(cancelledUnclaimed) == ["job.created", "job.cancelled"], "a finish of a job never claimed")
        #expect(try events(cancelledAfterEmptyClaim) == ["job.created", "job.cancelled"], "the trigger logs the statement after an empty claim")
        let started = try #require(rows.first { try $0.string("job") == retry.id.description && $0.string("event") == "job.started" })
        let startedAt = try #require(try connection.query("SELECT started_at FROM jobs WHERE id = $1::uuid", [retry.id.description]).first)
        #expect(try started.int64("at") == startedAt.int64("started_at") && started.int("attempt") == 2)
        let cancelled = try #require(rows.last)
        #expect(try cancelled.optionalString("error_code") == "cancelled")

        // Counted once each (schema 9): the finish counts its own, the trigger the statements
        // after a claim; and a schema-8 node's finish, which tells only the log trigger, is
        // still counted by the count trigger.
        try connection.execute("""
            WITH done AS (UPDATE jobs SET status = 'failed', finished_at = 2 WHERE id = $1::uuid RETURNING id)
            SELECT count(*) FROM done WHERE \(PostgresSchema.changesLoggedHere)
            """, [queued.id.description])
        #expect(try store.loadUnfinished().counts == groupedCounts(connection))
        #expect(try groupedCounts(connection)[JobCounts.Key(owner: nil, kind: "write_code", state: .cancelled)] == 3)
    }

    @Test("each event of one change has a step of its own, so that sorting by job and step keeps their order")
    func stepsAreDistinct() throws {
        let database = try TestDatabase()
        let connection = try database.connection()
        defer { connection.close() }
        let statuses = JobState.allCases.map(\.rawValue)
        for old in statuses {
            for new in statuses {
                for started in [true, false] {
                    let steps = try connection.query("SELECT step FROM jobpool_change_events($1, $2, $3::bool)", [old, new, started])
                        .map { try $0.int("step") }
                    #expect(steps == steps.sorted() && Set(steps).count == steps.count, "\(old) to \(new), started \(started): \(steps)")
                }
            }
        }
    }

    @Test("a batch of finishes of jobs never claimed, but started in the same commit, logs each one's start, then its end")
    func startBeforeEndInABatch() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: PostgresClaimTests.lease)
        defer { store.close() }
        let jobs = (0..<300).map { makeJob(createdAt: PostgresClaimTests.anHourAgo.addingTimeInterval(Double($0))) }
        try write(store, .submitted(jobs)).get()
        // Never claimed, with a start time: one statement logs job.started and job.succeeded for
        // each, sorted by job and step (equal steps could come out in either order).
        let started = Date()
        let writes = jobs.map { job in
            submit(store, .finished(job.key, attempt: 1, startedAt: started, status: .succeeded, result: .integer(1), error: nil,
                                    at: started.addingTimeInterval(0.001), event: nil, owner: nil, kind: job.kind))
        }
        for pending in writes { #expect(pending.wait() == .success) }
        let connection = try database.connection()
        defer { connection.close() }
        let rows = try connection.query("SELECT job_id::text AS job, event FROM job_events WHERE event <> 'job.created' ORDER BY id")
        var byJob: [String: [String]] = [:]
        for row in rows { byJob[try row.string("job"), default: []].append(try row.string("event")) }
        #expect(byJob.count == jobs.count)
        #expect(byJob.values.allSatisfy { $0 == ["job.started", "job.succeeded"] }, "\(byJob.values.filter { $0 != ["job.started", "job.succeeded"] }.prefix(3))")
    }
}
