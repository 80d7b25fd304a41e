import Foundation
import JobCore
import Postgres
import StoreTestSupport
import Testing
@testable import PostgresStore

/// What writes do to the counts, the attempt token, and idempotency keys (the SQLite store's
/// `StoreWriteTests`, against PostgreSQL).
@Suite("PostgreSQL store writes: counts, stale attempts, idempotency keys", .needsPostgres)
struct PostgresStoreWriteTests {
    /// The counts kept by the triggers, checked against a GROUP BY over the jobs themselves
    /// and against the memory store given the same changes.
    private func expectCounts(_ store: PostgresJobStore, _ database: TestDatabase, _ memory: MemoryJobStore,
                              _ expected: [JobCounts.Key: Int], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let connection = try database.connection()
        defer { connection.close() }
        #expect(try store.loadUnfinished().counts == expected, sourceLocation: sourceLocation)
        #expect(try groupedCounts(connection) == expected, "the counts agree with the rows", sourceLocation: sourceLocation)
        #expect(try memory.loadUnfinished().counts == expected, "the memory store agrees", sourceLocation: sourceLocation)
    }

    private func apply(_ change: StoreChange, to store: PostgresJobStore, and memory: MemoryJobStore, stale: Bool = false,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try writeIsStale(store, change) == stale, sourceLocation: sourceLocation)
        try write(memory, change).get()
    }

    @Test("counts follow submit, start, retry, finish, requeue and purge, and ignore stale writes")
    func counts() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        let memory = MemoryJobStore()
        let a = makeJob(createdAt: epoch)
        let b = makeJob(kind: "fetch_url", owner: "tenant", createdAt: epoch.addingTimeInterval(1))
        let c = makeJob(status: .scheduled, createdAt: epoch.addingTimeInterval(2))
        func key(_ owner: String?, _ kind: String, _ state: JobState) -> JobCounts.Key { JobCounts.Key(owner: owner, kind: kind, state: state) }

        try apply(.submitted([a, b, c]), to: store, and: memory)
        try expectCounts(store, database, memory, [key(nil, "write_code", .queued): 1, key("tenant", "fetch_url", .queued): 1,
                                                   key(nil, "write_code", .scheduled): 1])
        try apply(.started(a.key, attempt: 1, at: epoch), to: store, and: memory)
        try apply(.started(b.key, attempt: 1, at: epoch), to: store, and: memory)
        let failure = JobFailure(code: "timeout", message: "slow")
        try apply(.retrying(a.key, attempt: 1, startedAt: epoch, error: failure, at: epoch, nextAttemptAt: epoch), to: store, and: memory)
        try expectCounts(store, database, memory, [key("tenant", "fetch_url", .running): 1, key(nil, "write_code", .scheduled): 2])
        try apply(.requeued(b.key, attempt: 2, interrupted: (attempt: 1, startedAt: epoch)), to: store, and: memory)
        try apply(.started(a.key, attempt: 2, at: epoch), to: store, and: memory)
        try apply(.finished(a.key, attempt: 2, startedAt: epoch, status: .succeeded, result: .null, error: nil, at: epoch, event: nil, owner: a.owner, kind: a.kind),
                  to: store, and: memory)
        try apply(.finished(c.key, attempt: 1, startedAt: nil, status: .cancelled, result: nil, error: .cancelled, at: epoch, event: nil, owner: c.owner, kind: c.kind),
                  to: store, and: memory)
        try expectCounts(store, database, memory, [key(nil, "write_code", .succeeded): 1, key("tenant", "fetch_url", .queued): 1,
                                                   key(nil, "write_code", .cancelled): 1])
        // Stale: attempt 1 of a finished a, and a second finish of c.
        try apply(.finished(a.key, attempt: 1, startedAt: epoch, status: .failed, result: nil, error: failure, at: epoch, event: nil, owner: a.owner, kind: a.kind),
                  to: store, and: memory, stale: true)
        try apply(.finished(c.key, attempt: 1, startedAt: nil, status: .failed, result: nil, error: failure, at: epoch, event: nil, owner: c.owner, kind: c.kind),
                  to: store, and: memory, stale: true)
        try apply(.purged([a.key, c.key]), to: store, and: memory)
        try expectCounts(store, database, memory, [key("tenant", "fetch_url", .queued): 1])
        try apply(.purged([b.key]), to: store, and: memory)
        try expectCounts(store, database, memory, [:])
    }

    @Test("finished jobs are counted in rows of this node only, and a restart folds earlier nodes' rows into its own")
    func countsPerNode() throws {
        let database = try TestDatabase()
        let first = try database.open()
        let jobs = [makeJob(createdAt: epoch), makeJob(createdAt: epoch.addingTimeInterval(1)), makeJob(createdAt: epoch.addingTimeInterval(2))]
        try write(first, .submitted(jobs)).get()
        for job in jobs.prefix(2) {
            try write(first, .finished(job.key, attempt: 1, startedAt: nil, status: .cancelled, result: nil, error: .cancelled,
                                       at: epoch, event: nil, owner: job.owner, kind: job.kind)).get()
        }
        let firstNode = first.nodeID
        first.close()
        let second = try database.open()
        defer { second.close() }
        try write(second, .finished(jobs[2].key, attempt: 1, startedAt: nil, status: .cancelled, result: nil, error: .cancelled,
                                    at: epoch, event: nil, owner: jobs[2].owner, kind: jobs[2].kind)).get()
        let connection = try database.connection()
        defer { connection.close() }
        let rows = try connection.query("SELECT node, count FROM job_counts")
        #expect(try rows.map { try $0.string("node") } == [second.nodeID], "folded into the running node's row")
        #expect(try rows.first?.int("count") == 3)
        #expect(firstNode != second.nodeID)
        #expect(try second.loadUnfinished().counts == [JobCounts.Key(owner: nil, kind: "write_code", state: .cancelled): 3])
    }

    @Test("a stale attempt's writes are refused: a newer attempt's state and result stand")
    func staleAttempt() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        let job = makeJob(createdAt: epoch)
        let late = epoch.addingTimeInterval(50)
        try write(store, .submitted([job])).get()
        try write(store, .started(job.key, attempt: 1, at: epoch)).get()
        try write(store, .requeued(job.key, attempt: 2, interrupted: (attempt: 1, startedAt: epoch))).get()
        try write(store, .started(job.key, attempt: 2, at: epoch.addingTimeInterval(10))).get()
        // Attempt 1 comes back late: none of its writes may land.
        try write(store, .started(job.key, attempt: 1, at: late)).get()
        #expect(try writeIsStale(store, .retrying(job.key, attempt: 1, startedAt: epoch, error: JobFailure(code: "x", message: "y"), at: late,
                                                  nextAttemptAt: late)))
        #expect(try writeIsStale(store, .finished(job.key, attempt: 1, startedAt: epoch, status: .failed, result: nil,
                                                  error: JobFailure(code: "stale", message: "stale"), at: late,
                                                  event: WebhookEventRecord(jobID: job.id, webhookID: "msg_stale", url: "https://example.com/",
                                                                            key: [1], body: [1]), owner: job.owner, kind: job.kind)))
        var stored = try #require(try store.job(withID: job.id)?.record)
        #expect(stored.status == .running)
        #expect(stored.attempt == 2)
        #expect(stored.startedAt == epoch.addingTimeInterval(10))
        #expect(stored.error == nil)
        #expect(try store.webhookEvent(of: job.id) == nil, "a stale finish writes no webhook event")
        try write(store, .finished(job.key, attempt: 2, startedAt: epoch.addingTimeInterval(10), status: .succeeded, result: .integer(2),
                                   error: nil, at: epoch.addingTimeInterval(20), event: nil, owner: job.owner, kind: job.kind)).get()
        #expect(try writeIsStale(store, .finished(job.key, attempt: 1, startedAt: epoch, status: .failed, result: nil,
                                                  error: JobFailure(code: "stale", message: "stale"), at: late, event: nil, owner: job.owner, kind: job.kind)))
        try write(store, .started(job.key, attempt: 3, at: late)).get()
        stored = try #require(try store.job(withID: job.id)?.record)
        #expect(stored.status == .succeeded)
        #expect(stored.result == .integer(2))
        #expect(stored.finishedAt == epoch.addingTimeInterval(20))
        let connection = try database.connection()
        defer { connection.close() }
        let outcomes = try connection.query("SELECT attempt || ':' || outcome AS o FROM job_attempt_history ORDER BY attempt").map { try $0.string("o") }
        #expect(outcomes == ["1:interrupted", "2:succeeded"])
    }

    @Test("starts and finishes of many jobs in one commit: each fenced by its attempt, with its final attempt and event")
    func runsInOneCommit() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        let jobs = (0..<6).map { makeJob(createdAt: epoch.addingTimeInterval(Double($0))) }
        try write(store, .submitted(jobs)).get()
        // Job 5 is on its second attempt: its first attempt's start and finish are stale.
        let setup = try database.connection()
        defer { setup.close() }
        try setup.execute("UPDATE jobs SET attempt = 2 WHERE id = $1::uuid", [jobs[5].id.description])

        let (blocker, held) = try database.holdWriter(of: store)
        defer { blocker.close() }
        var writes: [PendingWrite] = []
        for job in jobs { writes.append(submit(store, .started(job.key, attempt: 1, at: epoch))) }
        for (index, job) in jobs.enumerated() {
            let event = index.isMultiple(of: 2)
                ? WebhookEventRecord(jobID: job.id, webhookID: "msg_\(index)", url: "https://example.com/", key: [1], body: [UInt8(index)])
                : nil
            writes.append(submit(store, .finished(job.key, attempt: 1, startedAt: epoch, status: index == 1 ? .failed : .succeeded,
                                                  result: index == 1 ? nil : .integer(index),
                                                  error: index == 1 ? JobFailure(code: "boom", message: "it's \"quoted\", {braced}") : nil,
                                                  at: epoch.addingTimeInterval(1), event: event, owner: job.owner, kind: job.kind)))
        }
        #expect(store.pendingWrites == 12, "all wait for one commit")
        try blocker.execute("COMMIT")
        #expect(held.wait() == .success)
        #expect(writes.allSatisfy { $0.wait() == .success })
        #expect(writes.map { $0.result.map { (try? $0.get()) == nil } } == Array(repeating: false, count: 11) + [true],
                "only job 5's finish is stale, and is reported so")

        for (index, job) in jobs.enumerated().prefix(5) {
            let stored = try #require(try store.job(withID: job.id)?.record)
            #expect(stored.status == (index == 1 ? .failed : .succeeded))
            #expect(stored.startedAt == epoch)
            #expect(stored.finishedAt == epoch.addingTimeInterval(1))
            #expect((try store.webhookEvent(of: job.id))?.body == (index.isMultiple(of: 2) ? [UInt8(index)] : nil))
        }
        #expect(try store.job(withID: jobs[1].id)?.record.error == JobFailure(code: "boom", message: "it's \"quoted\", {braced}"))
        let stale = try #require(try store.job(withID: jobs[5].id)?.record)
        #expect(stale.status == .queued && stale.attempt == 2, "the stale attempt changed nothing")
        #expect(try store.webhookEvent(of: jobs[5].id) == nil)
        let connection = try database.connection()
        defer { connection.close() }
        #expect(try connection.query("SELECT count(*) AS n FROM job_attempt_history").first?.int("n") == 5)
        #expect(try store.loadUnfinished().counts == [JobCounts.Key(owner: nil, kind: "write_code", state: .succeeded): 4,
                                                      JobCounts.Key(owner: nil, kind: "write_code", state: .failed): 1,
                                                      JobCounts.Key(owner: nil, kind: "write_code", state: .queued): 2])
    }

    @Test("a finish written again word for word (a commit whose reply was lost, retried) is applied, not stale, and adds nothing")
    func finishWrittenTwice() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        let job = makeJob(createdAt: epoch)
        try write(store, .submitted([job])).get()
        try write(store, .started(job.key, attempt: 1, at: epoch)).get()
        let event = WebhookEventRecord(jobID: job.id, webhookID: "msg_once", url: "https://example.com/", key: [1], body: [7])
        let finish = StoreChange.finished(job.key, attempt: 1, startedAt: epoch, status: .succeeded, result: .integer(1), error: nil,
                                          at: epoch.addingTimeInterval(1), event: event, owner: job.owner, kind: job.kind)
        try write(store, finish).get()
        #expect(!(try writeIsStale(store, finish)), "the same finish again is reported written")
        let connection = try database.connection()
        defer { connection.close() }
        #expect(try connection.query("SELECT count(*) AS n FROM job_attempt_history").first?.int("n") == 1)
        #expect(try connection.query("SELECT count(*) AS n FROM webhook_events").first?.int("n") == 1)
        #expect(try store.loadUnfinished().counts[JobCounts.Key(owner: nil, kind: "write_code", state: .succeeded)] == 1, "counted once")
        let different = StoreChange.finished(job.key, attempt: 1, startedAt: epoch, status: .failed, result: nil,
                                             error: JobFailure(code: "late", message: "late"), at: epoch.addingTimeInterval(2), event: nil, owner: job.owner, kind: job.kind)
        #expect(try writeIsStale(store, different), "another outcome of the finished attempt still is stale")
        #expect(try store.job(withID: job.id)?.record.status == .succeeded)
    }

    @Test("a job's final attempt is its row's, with no attempt row; the history shows each attempt once, a stored row before the job's")
    func finalAttemptFromTheJobRow() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        let ran = makeJob(createdAt: epoch), olderVersion = makeJob(createdAt: epoch), lost = makeJob(createdAt: epoch)
        let retried = makeJob(createdAt: epoch), cancelledBeforeItRan = makeJob(createdAt: epoch), neverRan = makeJob(createdAt: epoch)
        try write(store, .submitted([ran, olderVersion, lost, retried, cancelledBeforeItRan, neverRan])).get()
        func finish(_ job: JobRecord, attempt: Int = 1, startedAt: Date?, status: JobState = .succeeded) throws {
            try write(store, .finished(job.key, attempt: attempt, startedAt: startedAt, status: status,
                                       result: status == .succeeded ? .integer(1) : nil, error: status == .succeeded ? nil : .cancelled,
                                       at: epoch.addingTimeInterval(2), event: nil, owner: job.owner, kind: job.kind)).get()
        }
        for job in [ran, olderVersion] {
            try write(store, .started(job.key, attempt: 1, at: epoch)).get()
            try finish(job, startedAt: epoch)
        }
        try write(store, .started(retried.key, attempt: 1, at: epoch)).get()
        try write(store, .retrying(retried.key, attempt: 1, startedAt: epoch, error: JobFailure(code: "timeout", message: "slow"),
                                   at: epoch.addingTimeInterval(1), nextAttemptAt: epoch)).get()
        try write(store, .started(retried.key, attempt: 2, at: epoch.addingTimeInterval(1))).get()
        try finish(retried, attempt: 2, startedAt: epoch.addingTimeInterval(1))
        // Claimed here, then cancelled before a worker started it: the finish names no start.
        try write(store, .started(cancelledBeforeItRan.key, attempt: 1, at: epoch)).get()
        try finish(cancelledBeforeItRan, startedAt: nil, status: .cancelled)
        try finish(neverRan, startedAt: nil, status: .cancelled)
        let connection = try database.connection()
        defer { connection.close() }
        #expect(try connection.query("SELECT attempt || ':' || outcome AS o FROM job_attempts").map { try $0.string("o") } == ["1:failed"],
                "a row for the retried attempt only, none for a final one")
        // A version 9 node wrote its final attempts as rows (this one ended a second later than
        // the job row says, to tell them apart). The rescue records an attempt lost with its
        // node and, when it was the last, fails the job: written here by hand, as if so.
        try connection.execute("""
            INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, node)
            SELECT id, attempt, started_at, finished_at + 1000000, status, node FROM jobs WHERE id = $1::uuid
            """, [olderVersion.id.description])
        try connection.execute("""
            WITH failed AS (
                UPDATE jobs SET status = 'failed', started_at = 1, finished_at = 2, error_code = 'node_lost' WHERE id = $1::uuid
                RETURNING id)
            INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_code)
            SELECT id, 1, 1, 2, 'lost', 'node_lost' FROM failed
            """, [lost.id.description])
        func history(_ job: JobRecord) throws -> [String] {
            try connection.query("""
                SELECT attempt || ':' || outcome || ':' || started_at || ':' || finished_at || ':' || coalesce(node::text, '-') AS a
                FROM job_attempt_history WHERE job_id = $1::uuid ORDER BY attempt
                """, [job.id.description]).map { try $0.string("a") }
        }
        let micros = { (seconds: Double) in StoredTime.micros(epoch.addingTimeInterval(seconds)) }
        let node = store.nodeID
        #expect(try history(ran) == ["1:succeeded:\(micros(0)):\(micros(2)):\(node)"])
        #expect(try history(olderVersion) == ["1:succeeded:\(micros(0)):\(micros(3)):\(node)"], "the row, shown once")
        #expect(try history(lost) == ["1:lost:1:2:-"], "the stored row, not the job's")
        #expect(try history(retried) == ["1:failed:\(micros(0)):\(micros(1)):\(node)", "2:succeeded:\(micros(1)):\(micros(2)):\(node)"])
        #expect(try history(cancelledBeforeItRan) == ["1:cancelled:\(micros(0)):\(micros(2)):\(node)"],
                "claimed, then cancelled: the claimed attempt, from the claim's time")
        #expect(try history(neverRan).isEmpty, "a job that never started has no attempt")
    }

    @Test("an idempotency key is unique per owner while it lives; other owners may use it")
    func keyPerOwner() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        let key = IdempotencyRecord(key: "order-1", fingerprint: "f", expiresAt: epoch.addingTimeInterval(3600), webhookSecretGenerated: false)
        let mine = makeJob(owner: "tenant-a", createdAt: epoch, idempotency: key)
        let theirs = makeJob(owner: "tenant-b", createdAt: epoch, idempotency: key)
        let anonymous = makeJob(createdAt: epoch, idempotency: key)
        try write(store, .submitted([mine])).get()
        try write(store, .submitted([theirs])).get()
        try write(store, .submitted([anonymous])).get()
        #expect(try store.job(idempotencyKey: "order-1", owner: "tenant-a", now: epoch)?.record.id == mine.id)
        #expect(try store.job(idempotencyKey: "order-1", owner: "tenant-b", now: epoch)?.record.id == theirs.id)
        #expect(try store.job(idempotencyKey: "order-1", owner: nil, now: epoch)?.record.id == anonymous.id)
        #expect(try store.job(idempotencyKey: "order-1", owner: "tenant-a", now: epoch.addingTimeInterval(3600)) == nil, "expired")

        let again = makeJob(owner: "tenant-a", createdAt: epoch.addingTimeInterval(5), idempotency: key)
        guard case .failure(let error) = try write(store, .submitted([again])) else {
            Issue.record("a second live key of one owner was stored")
            return
        }
        #expect(error.message.contains("Idempotency-Key \"order-1\""), "\(error)")
        #expect(try store.job(withID: again.id) == nil)
        #expect(try store.loadUnfinished().counts.values.reduce(0, +) == 3, "a refused submission is not counted")
    }

    @Test("in one group commit, a duplicate key fails its own submission only; the rest commit")
    func duplicateInBatch() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        let key = IdempotencyRecord(key: "dup", fingerprint: "f", expiresAt: epoch.addingTimeInterval(3600), webhookSecretGenerated: false)
        let first = makeJob(createdAt: epoch, idempotency: key)
        let duplicate = makeJob(createdAt: epoch.addingTimeInterval(1), idempotency: key)
        let sibling = makeJob(createdAt: epoch.addingTimeInterval(1)) // in the duplicate's submission: all or none
        let other = makeJob(createdAt: epoch.addingTimeInterval(2))

        let (blocker, held) = try database.holdWriter(of: store)
        defer { blocker.close() }
        let writes = [submit(store, .submitted([first])), submit(store, .submitted([sibling, duplicate])),
                      submit(store, .submitted([other]))]
        #expect(store.pendingWrites == 3, "all three wait for one commit")
        try blocker.execute("COMMIT")

        #expect(held.wait() == .success)
        #expect(writes.allSatisfy { $0.wait() == .success })
        #expect((try? writes[0].result?.get()) != nil)
        #expect((try? writes[2].result?.get()) != nil)
        guard case .failure(let error) = writes[1].result else {
            Issue.record("the duplicate was stored")
            return
        }
        #expect(error.message.contains("Idempotency-Key \"dup\""))
        #expect(try store.job(withID: first.id) != nil)
        #expect(try store.job(withID: other.id) != nil)
        #expect(try store.job(withID: duplicate.id) == nil)
        #expect(try store.job(withID: sibling.id) == nil, "a submission is stored whole or not at all")
        #expect(try store.loadUnfinished().counts.values.reduce(0, +) == 3)
    }

    @Test("one key sent through two stores of one database at once makes one job")
    func keyAcrossConnections() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        // A second writer on the same database: a plain connection inserting the same key
        // inside an open transaction, which the store's insert must wait for and then lose to.
        let other = try database.connection()
        defer { other.close() }
        let key = IdempotencyRecord(key: "race", fingerprint: "f", expiresAt: epoch.addingTimeInterval(3600), webhookSecretGenerated: false)
        let winner = makeJob(createdAt: epoch, idempotency: key)
        try other.execute("BEGIN")
        try other.execute("""
            INSERT INTO jobs (id, created_at, kind, status, input, attempt, max_attempts, idempotency_key, idempotency_fingerprint,
                              idempotency_expires_at)
            VALUES ($1::uuid, $2::bigint, 'write_code', 'queued', '{}', 1, 3, 'race', 'f', $3::bigint)
            """, [winner.id.description, StoredTime.micros(epoch), StoredTime.micros(epoch.addingTimeInterval(3600))])
        let loser = submit(store, .submitted([makeJob(createdAt: epoch.addingTimeInterval(1), idempotency: key)]))
        // The store's writer is seen waiting on the other transaction's lock, not finished (seen
        // from a third connection: within a transaction, pg_stat_activity is a snapshot).
        let watcher = try database.connection()
        defer { watcher.close() }
        #expect(try eventually {
            try watcher.query("""
                SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """).first?.int("n") == 1
        }, "the insert waits for the other transaction")
        #expect(!loser.isFinished)
        try other.execute("COMMIT")
        #expect(loser.wait() == .success)
        guard case .failure(let error) = loser.result else {
            Issue.record("two jobs hold one key")
            return
        }
        #expect(error.message.contains("Idempotency-Key \"race\""))
        #expect(try store.job(idempotencyKey: "race", owner: nil, now: epoch)?.record.id == winner.id)
    }

    @Test("after its lifetime a key may create a new job; the old job keeps its record")
    func expiredKeyReuse() throws {
        let database = try TestDatabase()
        let store = try database.open()
        defer { store.close() }
        let memory = MemoryJobStore()
        let old = makeJob(createdAt: epoch, idempotency: IdempotencyRecord(
            key: "nightly", fingerprint: "a", expiresAt: epoch.addingTimeInterval(10), webhookSecretGenerated: false))
        let new = makeJob(createdAt: epoch.addingTimeInterval(20), idempotency: IdempotencyRecord(
            key: "nightly", fingerprint: "b", expiresAt: epoch.addingTimeInterval(3620), webhookSecretGenerated: true))
        try apply(.submitted([old]), to: store, and: memory)
        #expect(try store.job(idempotencyKey: "nightly", owner: nil, now: epoch.addingTimeInterval(9))?.record.id == old.id)
        #expect(try store.job(idempotencyKey: "nightly", owner: nil, now: epoch.addingTimeInterval(10)) == nil)
        try apply(.submitted([new]), to: store, and: memory)
        let now = epoch.addingTimeInterval(30)
        #expect(try store.job(idempotencyKey: "nightly", owner: nil, now: now)?.record.id == new.id)
        #expect(try store.job(idempotencyKey: "nightly", owner: nil, now: now) == (try memory.job(idempotencyKey: "nightly", owner: nil, now: now)))
        #expect(try store.job(withID: old.id) == (try memory.job(withID: old.id)), "the old job is unchanged")
        let third = makeJob(createdAt: epoch.addingTimeInterval(40), idempotency: new.options.idempotency)
        #expect((try? write(store, .submitted([third])).get()) == nil)
    }
}
