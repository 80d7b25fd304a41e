import Dispatch
import Foundation
import Logging
import Postgres
import StoreTestSupport
import Synchronization
import Testing
@testable import JobCore
@testable import PostgresStore

/// Two nodes (two stores, or two executors over them) on one database: the event log read in
/// order by every node, each event once, never past a transaction still open; cancels that
/// reach the node running the job.
@Suite("PostgreSQL across nodes: event log, cancels", .needsPostgres)
struct PostgresCrossNodeTests {
    /// What one node's store told it.
    final class Heard: Sendable {
        let events = Mutex<[StoredJobEvent]>([])
        let cancels = Mutex<[JobID]>([])

        var feed: ClusterFeed {
            ClusterFeed(cancelsRequested: { [self] ids in cancels.withLock { $0 += ids } },
                        jobEvents: { [self] events in self.events.withLock { $0 += events } })
        }

        func names(of id: JobID) -> [String] { events.withLock { $0.filter { $0.jobID == id }.map(\.event.rawValue) } }
    }

    /// A store that tells `heard`, started.
    func node(_ database: TestDatabase, _ heard: Heard? = nil) throws -> PostgresJobStore {
        let store = try PostgresJobStore(url: database.url, logger: quietLogger, healthCheckInterval: .milliseconds(100))
        if let heard { store.connect(heard.feed) }
        store.start()
        return store
    }

    @Test("a change committed by node 2 reaches node 1's tailer in order, exactly once")
    func eventsInOrderOnce() throws {
        let database = try TestDatabase()
        let heard = Heard()
        let one = try node(database, heard)
        defer { one.close() }
        let two = try node(database)
        defer { two.close() }
        let jobs = (0..<3).map { makeJob(createdAt: epoch.addingTimeInterval(Double($0))) }
        try write(two, .submitted(jobs)).get()
        let started = Date()
        for job in jobs { try write(two, .started(job.key, attempt: 1, at: started)).get() }
        try write(two, .finished(jobs[0].key, attempt: 1, startedAt: started, status: .succeeded, result: .integer(1), error: nil,
                                 at: Date(), event: nil, owner: jobs[0].owner, kind: jobs[0].kind)).get()
        try write(two, .retrying(jobs[1].key, attempt: 1, startedAt: started, error: JobFailure(code: "timeout", message: "slow"),
                                 at: Date(), nextAttemptAt: Date().addingTimeInterval(60))).get()
        try write(two, .finished(jobs[2].key, attempt: 1, startedAt: started, status: .failed, result: nil,
                                 error: JobFailure(code: "http_status", message: "500", status: 500), at: Date(), event: nil, owner: jobs[2].owner, kind: jobs[2].kind)).get()
        #expect(eventually { heard.events.withLock { $0.count } == 9 })
        let events = heard.events.withLock { $0 }
        #expect(events.map(\.id) == events.map(\.id).sorted() && Set(events.map(\.id)).count == events.count, "in ID order, each once")
        #expect(heard.names(of: jobs[0].id) == ["job.created", "job.started", "job.succeeded"])
        #expect(heard.names(of: jobs[1].id) == ["job.created", "job.started", "job.retried"])
        #expect(heard.names(of: jobs[2].id) == ["job.created", "job.started", "job.failed"])
        let retried = try #require(events.first { $0.event == .retried })
        #expect(retried.status == .scheduled && retried.attempt == 2 && retried.error?.code == "timeout")
        let failed = try #require(events.first { $0.event == .failed })
        #expect(failed.error == JobFailure(code: "http_status", message: "500", status: 500))
        // Nothing arrives twice, however often the poll looks again.
        let count = events.count
        #expect(!eventually(timeout: .milliseconds(1500)) { heard.events.withLock { $0.count } != count })
    }

    /// Inserts an event row in an open transaction on `connection`, as a trigger would (the
    /// transaction has its xid before it takes the event's ID); returns the ID.
    func insertEvent(_ connection: PostgresConnection, job: JobID) throws -> Int {
        _ = try connection.query("SELECT pg_current_xact_id()")
        return try #require(try connection.query("""
            INSERT INTO job_events (at, job_id, event, status, kind, attempt, max_attempts)
            VALUES (0, $1::uuid, 'job.created', 'queued', 'write_code', 1, 3) RETURNING id
            """, [job.description]).first?.int("id"))
    }

    @Test("the tailer waits for a transaction still open below a committed event, then reads both in ID order")
    func lateCommit() throws {
        let database = try TestDatabase()
        let reader = try database.connection()
        let early = try database.connection()
        let late = try database.connection()
        defer { [reader, early, late].forEach { $0.close() } }
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader))
        try early.execute("BEGIN")
        let low = try insertEvent(early, job: JobID())
        try late.execute("BEGIN")
        let high = try insertEvent(late, job: JobID())
        #expect(low < high)
        try late.execute("COMMIT")
        #expect(try tailer.read(on: reader).isEmpty, "event \(high) is committed, but \(low) below it may still commit")
        #expect(try tailer.read(on: reader).isEmpty, "still waiting")
        try early.execute("COMMIT")
        #expect(try tailer.read(on: reader).map(\.id) == [low, high])
        #expect(try tailer.read(on: reader).isEmpty)
    }

    @Test("the log counts as held back only while a committed event waits, not while an older unrelated transaction keeps the hole's checkpoint")
    func heldBackOnlyWhileEventsWait() throws {
        let database = try TestDatabase()
        let reader = try database.connection()
        let unrelated = try database.connection()
        let early = try database.connection()
        let late = try database.connection()
        defer { [reader, unrelated, early, late].forEach { $0.close() } }
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader))
        // Older than every event, open throughout: every checkpoint waits for it.
        try unrelated.execute("BEGIN")
        _ = try unrelated.query("SELECT pg_current_xact_id()")
        try early.execute("BEGIN")
        let low = try insertEvent(early, job: JobID())
        try late.execute("BEGIN")
        let high = try insertEvent(late, job: JobID())
        try late.execute("COMMIT")
        #expect(try tailer.read(on: reader).isEmpty)
        #expect(tailer.isHeldBack(for: .zero), "event \(high) is committed and waits")
        #expect(!tailer.isHeldBack(for: .seconds(60)))
        try early.execute("COMMIT")
        #expect(try tailer.read(on: reader).map(\.id) == [low, high])
        #expect(!tailer.isHeldBack(for: .zero), "nothing waits, though the checkpoint stays until the unrelated transaction ends")
        try unrelated.execute("ROLLBACK")
    }

    @Test("a hole left by a rolled-back transaction is passed once no transaction can fill it")
    func rolledBackHole() throws {
        let database = try TestDatabase()
        let reader = try database.connection()
        let writer = try database.connection()
        defer { [reader, writer].forEach { $0.close() } }
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader))
        try writer.execute("BEGIN")
        let lost = try insertEvent(writer, job: JobID())
        try writer.execute("ROLLBACK")
        try writer.execute("BEGIN")
        let kept = try insertEvent(writer, job: JobID())
        try writer.execute("COMMIT")
        #expect(kept > lost)
        var read: [Int] = []
        #expect(try eventually(timeout: .seconds(5)) {
            read += try tailer.read(on: reader).map(\.id)
            return read == [kept]
        })
    }

    /// One event in a transaction of its own, committed; returns its ID.
    func insertCommitted(_ connection: PostgresConnection) throws -> Int {
        try connection.execute("BEGIN")
        let id = try insertEvent(connection, job: JobID())
        try connection.execute("COMMIT")
        return id
    }

    @Test("settling moves the settled end on without reading an event, and not past a transaction still open; a read afterwards carries on from where the tailer stood, in order")
    func settleThenRead() throws {
        let database = try TestDatabase()
        let reader = try database.connection()
        let writer = try database.connection()
        let early = try database.connection()
        defer { [reader, writer, early].forEach { $0.close() } }
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader))
        let start = tailer.position
        let committed = try (0..<2).map { _ in try insertCommitted(writer) }
        try early.execute("BEGIN")
        let low = try insertEvent(early, job: JobID())
        let high = try insertCommitted(writer)
        try tailer.settle(on: reader)
        try tailer.settle(on: reader)
        #expect(tailer.settledPosition == start, "the transaction still open below \(high) holds the settled end back")
        try early.execute("COMMIT")
        #expect(eventually { ((try? tailer.settle(on: reader)) ?? 0) >= high })
        #expect(tailer.position == start, "settling read nothing")
        #expect(try tailer.read(on: reader).map(\.id) == committed + [low, high])
        #expect(tailer.position == high)
    }

    @Test("after a quiet time, the settled events no reader needs are skipped: those before a stream's start, past its window's worth, or all with no stream")
    func skipBacklog() throws {
        let database = try TestDatabase()
        let reader = try database.connection()
        let writer = try database.connection()
        defer { [reader, writer].forEach { $0.close() } }
        let tailer = PostgresEventTailer(after: try PostgresEventTailer.end(on: reader))
        let start = tailer.position
        let ids = try (0..<5).map { _ in try insertCommitted(writer) }
        #expect(tailer.skipBacklog(streamsAfter: nil, keeping: 0) == nil, "nothing is settled yet: nothing is skipped")
        #expect(eventually { ((try? tailer.settle(on: reader)) ?? 0) >= ids[4] })
        // A stream from before them: no more than the window's worth is read back.
        #expect(tailer.skipBacklog(streamsAfter: start, keeping: 2) == ids[4] - 2)
        #expect(tailer.skipBacklog(streamsAfter: start, keeping: 2) == nil)
        #expect(try tailer.read(on: reader).map(\.id) == ids.filter { $0 > ids[4] - 2 })

        // A stream that started among them needs those after its start only.
        let more = try (0..<4).map { _ in try insertCommitted(writer) }
        #expect(eventually { ((try? tailer.settle(on: reader)) ?? 0) >= more[3] })
        #expect(tailer.skipBacklog(streamsAfter: more[1], keeping: 100) == more[1])
        #expect(try tailer.read(on: reader).map(\.id) == Array(more[2...]))

        // No stream: nothing before now is needed.
        let last = try (0..<3).map { _ in try insertCommitted(writer) }
        #expect(eventually { ((try? tailer.settle(on: reader)) ?? 0) >= last[2] })
        #expect(tailer.skipBacklog(streamsAfter: nil, keeping: 100) == last[2])
        #expect(try tailer.read(on: reader).isEmpty)
    }

    @Test("a cancel recorded on node 1 for a job running on node 2 cancels it there within a second; node 1's handle sees it end")
    func cancelAcrossNodes() throws {
        let database = try TestDatabase()
        let storeOne = try PostgresJobStore(url: database.url, logger: quietLogger, healthCheckInterval: .milliseconds(100))
        let storeTwo = try PostgresJobStore(url: database.url, logger: quietLogger, healthCheckInterval: .milliseconds(100))
        let one = JobExecutor(configuration: .init(workers: 1), kinds: [WriteCode()], store: storeOne, logger: quietLogger)
        let two = JobExecutor(configuration: .init(workers: 1), kinds: [WriteCode()], store: storeTwo, logger: quietLogger)
        // Node 1 starts once node 2 runs the job, so that node 2 is the one to claim it.
        storeTwo.start()
        two.start()
        defer {
            for (store, executor) in [(storeOne, one), (storeTwo, two)] {
                executor.drain(grace: .seconds(1))
                store.close()
            }
        }
        let accepted = Mutex<Job?>(nil)
        _ = try two.submit(kind: "write_code", input: .object(["name": .string("long"), "min_seconds": .integer(60), "max_seconds": .integer(60)])) { result in
            accepted.withLock { $0 = try? result.get() }
        }
        #expect(eventually { accepted.withLock { $0 } != nil })
        let running = try #require(accepted.withLock { $0 })
        #expect(eventually { running.snapshot().status == .running })
        storeOne.start()
        one.start()
        // Node 1 does not hold the job: it sees it through the store.
        let handle = try #require(try one.loadJob(withID: running.id))
        #expect(one.cachedJob(withID: running.id) === handle, "watched: later requests share the handle")
        #expect(handle.snapshot().status == .running)
        let asked = ContinuousClock.now
        #expect(one.cancel(handle) == .stopping)
        let final = running.result(timeout: .seconds(5))
        #expect(final?.status == .cancelled, "node 2 stopped its running job")
        #expect(ContinuousClock.now - asked < .seconds(2), "within about a second (NOTIFY; the poll is the fallback)")
        #expect(handle.result(timeout: .seconds(5))?.status == .cancelled, "node 1's handle heard of the end from the event log")
        let connection = try database.connection()
        defer { connection.close() }
        let row = try #require(try connection.query("SELECT status, cancel_requested_at FROM jobs WHERE id = $1::uuid", [running.id.description]).first)
        #expect(try row.string("status") == "cancelled" && row.optionalInt64("cancel_requested_at") != nil, "the request was recorded")
    }

    @Test("retention deletes events older than the cutoff, in batches, oldest first")
    func eventRetention() throws {
        let database = try TestDatabase()
        let store = try node(database)
        defer { store.close() }
        let jobs = (0..<5).map { makeJob(createdAt: epoch.addingTimeInterval(Double($0))) }
        try write(store, .submitted(jobs)).get() // five job.created events, at each job's created_at
        let connection = try database.connection()
        defer { connection.close() }
        func remaining() throws -> Int { try connection.query("SELECT count(*) AS n FROM job_events").first?.int("n") ?? -1 }
        #expect(try remaining() == 5)
        let cutoff = epoch.addingTimeInterval(3.5)
        #expect(try store.purgeEvents(before: cutoff, limit: 2) == 2)
        #expect(try store.purgeEvents(before: cutoff, limit: 2) == 2)
        #expect(try store.purgeEvents(before: cutoff, limit: 2) == 0)
        let left = try connection.query("SELECT job_id FROM job_events").map { try $0.string("job_id") }
        #expect(left == [jobs[4].id.description], "only the event after the cutoff is kept")
    }

    @Test("an open cancel request reaches the node by the poll alone, without a notification")
    func cancelByPoll() throws {
        let database = try TestDatabase()
        let heard = Heard()
        let store = try PostgresJobStore(url: database.url, logger: quietLogger, healthCheckInterval: .milliseconds(100),
                                         pollInterval: .milliseconds(200))
        store.connect(heard.feed)
        store.start()
        defer { store.close() }
        let job = makeJob(createdAt: epoch)
        try write(store, .submitted([job])).get()
        let connection = try database.connection()
        defer { connection.close() }
        // Written behind the store's back: no NOTIFY is sent.
        try connection.execute("UPDATE jobs SET cancel_requested_at = 1 WHERE id = $1::uuid", [job.id.description])
        #expect(eventually(timeout: .seconds(5)) { heard.cancels.withLock { $0.contains(job.id) } })
    }
}
