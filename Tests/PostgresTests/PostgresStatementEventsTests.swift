import Foundation
import Postgres
import StoreTestSupport
import Testing
@testable import JobCore
@testable import PostgresStore

/// Claims and finishes write their own `job_events` rows and tell the log trigger to skip them
/// (schema 8); every other change is still logged by the trigger, as an older node's are.
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
        try write(store, .submitted([queued, retry, cancelledInTransaction, cancelledUnclaimed])).get()

        let connection = try database.connection()
        defer { connection.close() }
        let node = try #require(store.cluster?.nodeID)
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
        let started = try #require(rows.first { try $0.string("job") == retry.id.description && $0.string("event") == "job.started" })
        let startedAt = try #require(try connection.query("SELECT started_at FROM jobs WHERE id = $1::uuid", [retry.id.description]).first)
        #expect(try started.int64("at") == startedAt.int64("started_at") && started.int("attempt") == 2)
        let cancelled = try #require(rows.last)
        #expect(try cancelled.optionalString("error_code") == "cancelled")
    }
}
