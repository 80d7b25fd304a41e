import Foundation
import GRDB
import JobCore
import StoreTestSupport
import Testing
@testable import SQLiteStore

/// What writes do to the counts, the attempt token, and idempotency keys.
@Suite("SQLite store writes: counts, stale attempts, idempotency keys")
struct StoreWriteTests {
    /// The counts kept by the triggers, checked against a GROUP BY over the jobs themselves
    /// and against the memory store given the same changes.
    private func expectCounts(_ store: SQLiteJobStore, _ memory: MemoryJobStore, _ expected: [JobCounts.Key: Int],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let kept = try store.loadUnfinished().counts
        let grouped = try store.database.read { db in
            var counts: [JobCounts.Key: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT owner, kind, status, count(*) AS n FROM jobs GROUP BY 1, 2, 3") {
                counts[JobCounts.Key(owner: row["owner"], kind: row["kind"], state: JobState(rawValue: row["status"])!)] = row["n"]
            }
            return counts
        }
        #expect(kept == expected, sourceLocation: sourceLocation)
        #expect(grouped == expected, "the counts agree with the rows", sourceLocation: sourceLocation)
        #expect(try memory.loadUnfinished().counts == expected, "the memory store agrees", sourceLocation: sourceLocation)
    }

    private func apply(_ change: StoreChange, to store: SQLiteJobStore, and memory: MemoryJobStore) throws {
        try write(store, change).get()
        try write(memory, change).get()
    }

    /// Run twice: finishes that name their job's owner and kind (as the completer's do, so the
    /// writer counts without reading the row back), and finishes that do not.
    @Test("counts follow submit, start, retry, finish, requeue and purge, and ignore stale writes")
    func counts() throws {
        let file = TemporaryStore()
        let store = try file.open()
        defer { store.close() }
        let memory = MemoryJobStore()
        let a = makeJob(createdAt: epoch)
        let b = makeJob(kind: "fetch_url", owner: "tenant", createdAt: epoch.addingTimeInterval(1))
        let c = makeJob(status: .scheduled, createdAt: epoch.addingTimeInterval(2))
        func key(_ owner: String?, _ kind: String, _ state: JobState) -> JobCounts.Key { JobCounts.Key(owner: owner, kind: kind, state: state) }
        func finished(_ job: JobRecord, attempt: Int, startedAt: Date?, status: JobState, result: JSONValue?,
                      error: JobFailure?) -> StoreChange {
            .finished(job.key, attempt: attempt, startedAt: startedAt, status: status, result: result, error: error, at: epoch, event: nil,
                      owner: job.owner, kind: job.kind)
        }

        try apply(.submitted([a, b, c]), to: store, and: memory)
        try expectCounts(store, memory, [key(nil, "write_code", .queued): 1, key("tenant", "fetch_url", .queued): 1,
                                         key(nil, "write_code", .scheduled): 1])
        try apply(.started(a.key, attempt: 1, at: epoch), to: store, and: memory)
        try apply(.started(b.key, attempt: 1, at: epoch), to: store, and: memory)
        try expectCounts(store, memory, [key(nil, "write_code", .running): 1, key("tenant", "fetch_url", .running): 1,
                                         key(nil, "write_code", .scheduled): 1])
        let failure = JobFailure(code: "timeout", message: "slow")
        try apply(.retrying(a.key, attempt: 1, startedAt: epoch, error: failure, at: epoch, nextAttemptAt: epoch), to: store, and: memory)
        try expectCounts(store, memory, [key("tenant", "fetch_url", .running): 1, key(nil, "write_code", .scheduled): 2])
        try apply(.requeued(b.key, attempt: 2, interrupted: (attempt: 1, startedAt: epoch)), to: store, and: memory)
        try apply(.started(a.key, attempt: 2, at: epoch), to: store, and: memory)
        try apply(finished(a, attempt: 2, startedAt: epoch, status: .succeeded, result: .null, error: nil),
                  to: store, and: memory)
        try apply(finished(c, attempt: 1, startedAt: nil, status: .cancelled, result: nil, error: .cancelled),
                  to: store, and: memory)
        try expectCounts(store, memory, [key(nil, "write_code", .succeeded): 1, key("tenant", "fetch_url", .queued): 1,
                                         key(nil, "write_code", .cancelled): 1])
        // Stale: attempt 1 of a finished a, and a second finish of c.
        try apply(finished(a, attempt: 1, startedAt: epoch, status: .failed, result: nil, error: failure),
                  to: store, and: memory)
        try apply(finished(c, attempt: 1, startedAt: nil, status: .failed, result: nil, error: failure),
                  to: store, and: memory)
        try apply(.purged([a.key, c.key]), to: store, and: memory)
        try expectCounts(store, memory, [key("tenant", "fetch_url", .queued): 1])
        try apply(.purged([b.key]), to: store, and: memory)
        try expectCounts(store, memory, [:])
    }

    @Test("a stale attempt's writes are refused: a newer attempt's state and result stand")
    func staleAttempt() throws {
        let file = TemporaryStore()
        let store = try file.open()
        defer { store.close() }
        let job = makeJob(createdAt: epoch)
        let late = epoch.addingTimeInterval(50)
        try write(store, .submitted([job])).get()
        try write(store, .started(job.key, attempt: 1, at: epoch)).get()
        // Attempt 1 was taken for lost (a crash, a rescue) and attempt 2 runs.
        try write(store, .requeued(job.key, attempt: 2, interrupted: (attempt: 1, startedAt: epoch))).get()
        try write(store, .started(job.key, attempt: 2, at: epoch.addingTimeInterval(10))).get()
        // Attempt 1 comes back late: none of its writes may land.
        try write(store, .started(job.key, attempt: 1, at: late)).get()
        try write(store, .retrying(job.key, attempt: 1, startedAt: epoch, error: JobFailure(code: "x", message: "y"), at: late,
                                   nextAttemptAt: late)).get()
        try write(store, .finished(job.key, attempt: 1, startedAt: epoch, status: .failed, result: nil,
                                   error: JobFailure(code: "stale", message: "stale"), at: late, event: nil, owner: job.owner, kind: job.kind)).get()
        var stored = try #require(try store.job(withID: job.id)?.record)
        #expect(stored.status == .running)
        #expect(stored.attempt == 2)
        #expect(stored.startedAt == epoch.addingTimeInterval(10))
        #expect(stored.error == nil)
        try write(store, .finished(job.key, attempt: 2, startedAt: epoch.addingTimeInterval(10), status: .succeeded, result: .integer(2),
                                   error: nil, at: epoch.addingTimeInterval(20), event: nil, owner: job.owner, kind: job.kind)).get()
        // Attempt 1 once more, after the job finished.
        try write(store, .finished(job.key, attempt: 1, startedAt: epoch, status: .failed, result: nil,
                                   error: JobFailure(code: "stale", message: "stale"), at: late, event: nil, owner: job.owner, kind: job.kind)).get()
        try write(store, .started(job.key, attempt: 3, at: late)).get()
        stored = try #require(try store.job(withID: job.id)?.record)
        #expect(stored.status == .succeeded)
        #expect(stored.result == .integer(2))
        #expect(stored.finishedAt == epoch.addingTimeInterval(20))
        let outcomes = try store.database.read { db in
            try String.fetchAll(db, sql: "SELECT attempt || ':' || outcome FROM job_attempts ORDER BY attempt")
        }
        #expect(outcomes == ["1:interrupted", "2:succeeded"])
    }

    @Test("an idempotency key is unique per owner while it lives; other owners may use it")
    func keyPerOwner() throws {
        let file = TemporaryStore()
        let store = try file.open()
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
        let refused = try write(store, .submitted([again]))
        guard case .failure(let error) = refused else {
            Issue.record("a second live key of one owner was stored")
            return
        }
        #expect(error.message.contains("Idempotency-Key \"order-1\""), "\(error)")
        #expect(try store.job(withID: again.id) == nil)
        #expect(try store.loadUnfinished().counts.values.reduce(0, +) == 3, "a refused submission is not counted")
    }

    @Test("in one group commit, a duplicate key fails its own submission only; the rest commit")
    func duplicateInBatch() throws {
        let file = TemporaryStore()
        let store = try file.open()
        defer { store.close() }
        let key = IdempotencyRecord(key: "dup", fingerprint: "f", expiresAt: epoch.addingTimeInterval(3600), webhookSecretGenerated: false)
        let first = makeJob(createdAt: epoch, idempotency: key)
        let duplicate = makeJob(createdAt: epoch.addingTimeInterval(1), idempotency: key)
        let sibling = makeJob(createdAt: epoch.addingTimeInterval(1)) // in the duplicate's submission: all or none
        let other = makeJob(createdAt: epoch.addingTimeInterval(2))

        // Another connection holds the write lock, so that the writer takes the blocker and
        // waits, and everything after it queues up for one transaction.
        let blocker = try file.connection()
        try blocker.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        let held = submit(store, .submitted([makeJob(createdAt: epoch.addingTimeInterval(-1))]))
        #expect(eventually { store.queue.pendingCount == 0 }, "the writer took the first submission")
        let writes = [submit(store, .submitted([first])), submit(store, .submitted([sibling, duplicate])),
                      submit(store, .submitted([other]))]
        #expect(store.queue.pendingCount == 3, "all three wait for one commit")
        try blocker.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
        try blocker.close()

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

    @Test("after its lifetime a key may create a new job; the old job keeps its record")
    func expiredKeyReuse() throws {
        let file = TemporaryStore()
        let store = try file.open()
        defer { store.close() }
        let memory = MemoryJobStore()
        // Times are after the wall clock, as under a clock that runs ahead: the key's expiry
        // is judged by the submission's own time.
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
        #expect(try store.job(withID: old.id)?.record.options.idempotency?.key == "nightly")
        // The successor's key is live: a third job may not take it.
        let third = makeJob(createdAt: epoch.addingTimeInterval(40), idempotency: new.options.idempotency)
        #expect((try? write(store, .submitted([third])).get()) == nil)
    }
}
