import Foundation
import Postgres
import StoreTestSupport
import Testing
@testable import JobCore
@testable import PostgresStore

/// The event log reads runs (``PostgresSchema/version10``): a statement's events in one row,
/// each run one place in the log's order beside the rows of `job_events`. Nothing in this
/// version writes a run, so the tests write them by hand, as the next version's statements
/// will: the sequence stepped by a run's capacity first, the transaction's xid taken before
/// the run's ID.
@Suite("PostgreSQL event log: runs of events", .needsPostgres)
struct PostgresEventRunTests {
    /// Steps the log's sequence by a run's capacity and records where, as the version that
    /// writes runs will; returns the first value of the step.
    func stepSequence(_ connection: PostgresConnection) throws -> Int {
        try connection.execute("ALTER TABLE job_events ALTER COLUMN id SET INCREMENT BY \(PostgresSchema.eventRunCapacity)")
        let first = try #require(try connection.query("""
            UPDATE job_event_stride SET stride_from = nextval(pg_get_serial_sequence('job_events', 'id')) RETURNING stride_from
            """).first?.int("stride_from"))
        return first
    }

    /// Writes a run of `job.started` events, one per job (the last one failed, to carry an
    /// error), in the open transaction on `connection` if there is one; returns its first ID.
    /// `firstID` takes a value already taken from the sequence.
    @discardableResult
    func insertRun(_ connection: PostgresConnection, jobs: [JobID], at: Int64 = 1_000, firstID: Int? = nil) throws -> Int {
        _ = try connection.query("SELECT pg_current_xact_id()")
        let events = jobs.indices.map { $0 == jobs.count - 1 ? "job.failed" : "job.started" }
        let statuses = jobs.indices.map { $0 == jobs.count - 1 ? "failed" : "running" }
        let errors: [String?] = jobs.indices.map { $0 == jobs.count - 1 ? "timeout" : nil }
        return try #require(try connection.query("""
            INSERT INTO job_event_runs (first_id, newest_at, ats, job_ids, events, statuses, kinds, owners, attempts, max_attempts,
                                        error_codes, error_messages, error_statuses)
            SELECT coalesce($1::bigint, nextval(pg_get_serial_sequence('job_events', 'id'))), $2::bigint,
                   array_fill($2::bigint, ARRAY[cardinality($3::uuid[])]), $3::uuid[], $4::text[], $5::text[],
                   array_fill('write_code'::text, ARRAY[cardinality($3::uuid[])]), array_fill(NULL::text, ARRAY[cardinality($3::uuid[])]),
                   array_fill(2, ARRAY[cardinality($3::uuid[])]), array_fill(3, ARRAY[cardinality($3::uuid[])]),
                   $6::text[], $6::text[], NULL
            RETURNING first_id
            """, [firstID, at, PostgresArray(jobs.map(\.description)), PostgresArray(events), PostgresArray(statuses),
                  PostgresArray(errors)]).first?.int("first_id"))
    }

    /// Writes one row of `job_events`, as a trigger would.
    @discardableResult
    func insertRow(_ connection: PostgresConnection, job: JobID, mirrored: Bool? = nil) throws -> Int {
        _ = try connection.query("SELECT pg_current_xact_id()")
        return try #require(try connection.query("""
            INSERT INTO job_events (at, job_id, event, status, kind, attempt, max_attempts, mirrored)
            VALUES (0, $1::uuid, 'job.created', 'queued', 'write_code', 1, 3, $2::boolean) RETURNING id
            """, [job.description, mirrored]).first?.int("id"))
    }

    @Test("runs and rows come out in the log's order, each event once with its own ID, however small the reads")
    func runsAndRowsInOrder() throws {
        let database = try TestDatabase()
        let reader = try database.connection()
        let writer = try database.connection()
        defer { [reader, writer].forEach { $0.close() } }
        let beforeStep = JobID()
        let before = try insertRow(writer, job: beforeStep)
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader), batchSize: 2, runBatchSize: 1)
        #expect(tailer.position == before)
        let stride = try stepSequence(writer)
        let first = (0..<3).map { _ in JobID() }, second = (0..<2).map { _ in JobID() }
        let lone = JobID(), third = [JobID()]
        let firstRun = try insertRun(writer, jobs: first, firstID: stride)
        let row = try insertRow(writer, job: lone)
        let secondRun = try insertRun(writer, jobs: second)
        let thirdRun = try insertRun(writer, jobs: third)
        #expect([firstRun, row, secondRun, thirdRun] == (0..<4).map { stride + $0 * PostgresSchema.eventRunCapacity })

        let events = try tailer.read(on: reader)
        #expect(events.map(\.jobID) == first + [lone] + second + third, "one read goes on while its reads are full")
        #expect(events.map(\.id) == [firstRun, firstRun + 1, firstRun + 2, row, secondRun, secondRun + 1, thirdRun])
        let failed = try #require(events.first { $0.jobID == first[2] })
        #expect(failed.event == .failed && failed.status == .failed && failed.error?.code == "timeout" && failed.attempt == 2)
        #expect(events.first { $0.jobID == first[0] }?.error == nil)
        #expect(tailer.position == thirdRun)
        #expect(try tailer.read(on: reader).isEmpty)
        #expect(try PostgresEventTailer.end(on: reader).event == thirdRun)
        #expect(try PostgresEventTailer.end(on: reader).place == thirdRun)

        let log = try reader.query("SELECT id, job_id::text AS job FROM job_event_log ORDER BY id")
        #expect(try log.map { try $0.int("id") } == [before] + events.map(\.id), "the view shows every event as a row")
        #expect(try log.map { try $0.string("job") } == ([beforeStep] + first + [lone] + second + third).map(\.description))
    }

    @Test("a run still open below a committed run holds it back; both come out once it commits")
    func openRunHoldsBack() throws {
        let database = try TestDatabase()
        let reader = try database.connection()
        let early = try database.connection()
        let late = try database.connection()
        defer { [reader, early, late].forEach { $0.close() } }
        let stride = try stepSequence(early)
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader))
        let lowJobs = [JobID(), JobID()], highJobs = [JobID()]
        try early.execute("BEGIN")
        let low = try insertRun(early, jobs: lowJobs, firstID: stride)
        try late.execute("BEGIN")
        let high = try insertRun(late, jobs: highJobs)
        try late.execute("COMMIT")
        #expect(try tailer.read(on: reader).isEmpty, "run \(high) is committed, but \(low) below it may still commit")
        #expect(try tailer.read(on: reader).isEmpty)
        try early.execute("COMMIT")
        #expect(try tailer.read(on: reader).map(\.id) == [low, low + 1, high])
    }

    @Test("places a step apart follow each other only once the sequence steps; a rolled-back run's place is passed once settled")
    func strideAndHoles() throws {
        #expect(PostgresEventTailer.follows(11, 10, strideFrom: nil))
        #expect(!PostgresEventTailer.follows(10 + PostgresSchema.eventRunCapacity, 10, strideFrom: nil),
                "before the step, the values between may belong to transactions still open")
        let stride = 5_000
        #expect(PostgresEventTailer.follows(stride, stride - PostgresSchema.eventRunCapacity, strideFrom: stride))
        #expect(PostgresEventTailer.follows(stride + PostgresSchema.eventRunCapacity, stride, strideFrom: stride))
        #expect(!PostgresEventTailer.follows(stride + 1, stride, strideFrom: stride))
        #expect(PostgresEventTailer.follows(101, 100, strideFrom: stride))

        let database = try TestDatabase()
        let reader = try database.connection()
        let writer = try database.connection()
        defer { [reader, writer].forEach { $0.close() } }
        let first = try stepSequence(writer)
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader))
        try writer.execute("BEGIN")
        try insertRun(writer, jobs: [JobID()], firstID: first)
        try writer.execute("ROLLBACK")
        let kept = try insertRun(writer, jobs: [JobID()])
        var read: [Int] = []
        #expect(try eventually(timeout: .seconds(5)) {
            read += try tailer.read(on: reader).map(\.id)
            return read == [kept]
        })
    }

    @Test("rows mirrored from runs for older nodes are passed over")
    func mirroredRowsPassedOver() throws {
        let database = try TestDatabase()
        let reader = try database.connection()
        let writer = try database.connection()
        defer { [reader, writer].forEach { $0.close() } }
        let stride = try stepSequence(writer)
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader))
        let jobs = [JobID(), JobID()]
        try writer.execute("BEGIN")
        let run = try insertRun(writer, jobs: jobs, firstID: stride)
        for (offset, job) in jobs.enumerated() {
            try writer.execute("""
                INSERT INTO job_events (id, at, job_id, event, status, kind, attempt, max_attempts, mirrored)
                OVERRIDING SYSTEM VALUE VALUES ($1::bigint, 0, $2::uuid, 'job.started', 'running', 'write_code', 2, 3, true)
                """, [run + offset, job.description])
        }
        try writer.execute("COMMIT")
        #expect(try tailer.read(on: reader).map(\.id) == [run, run + 1])
        #expect(try reader.query("SELECT count(*) AS n FROM job_event_log").first?.int("n") == 2)
    }

    @Test("retention deletes a run whole once its newest event is past the cutoff, and counts its events")
    func runRetention() throws {
        let database = try TestDatabase()
        let store = try PostgresJobStore(url: database.url, logger: quietLogger)
        defer { store.close() }
        let connection = try database.connection()
        defer { connection.close() }
        let stride = try stepSequence(connection)
        let old = StoredTime.micros(epoch)
        try insertRun(connection, jobs: [JobID(), JobID(), JobID()], at: old, firstID: stride)
        try insertRun(connection, jobs: [JobID(), JobID()], at: old + 2_000_000)
        let cutoff = epoch.addingTimeInterval(1)
        #expect(try store.purgeEvents(before: cutoff, limit: 1000) == 3)
        #expect(try store.purgeEvents(before: cutoff, limit: 1000) == 0, "the newer run is kept")
        #expect(try connection.query("SELECT count(*) AS n FROM job_event_log").first?.int("n") == 2)
    }

    @Test("a node registers the schema version it runs, so that a later version can tell older nodes apart")
    func nodeRegistersVersion() throws {
        let database = try TestDatabase()
        let store = try PostgresJobStore(url: database.url, logger: quietLogger)
        store.start()
        defer { store.close() }
        let connection = try database.connection()
        defer { connection.close() }
        #expect(try eventually {
            try connection.query("SELECT schema_version FROM nodes").first?.optionalInt("schema_version") == PostgresSchema.currentVersion
        })
    }
}
