import Dispatch
import Foundation
import Postgres
import StoreTestSupport
import Synchronization
import Testing
@testable import JobCore
@testable import PostgresStore

/// A claim hands its jobs to the workers as soon as its rows are back, while it commits; a
/// write about one of them waits for that commit.
///
/// A commit is held open on purpose here: a deferred constraint trigger runs at commit and
/// waits for an advisory lock that the test holds, so that what happens meanwhile is certain.
@Suite("PostgreSQL claims overlap their commit", .needsPostgres)
struct PostgresClaimCommitTests {
    /// The lock a held commit waits for.
    static let commitLock = 4242

    /// Makes every commit that inserted into `table` (or updated it into `running`, for
    /// `jobs`) wait for ``commitLock``, or fail, with `refuse`.
    func holdCommits(of table: String, on connection: PostgresConnection, when condition: String = "true",
                     refuse: Bool = false) throws {
        let body = refuse ? "RAISE EXCEPTION 'refused at commit'" : "PERFORM pg_advisory_xact_lock_shared(\(Self.commitLock))"
        try connection.executeScript("""
            CREATE FUNCTION held_at_commit_\(table)() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \(body); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER held_at_commit AFTER INSERT OR UPDATE ON \(table) DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW WHEN (\(condition)) EXECUTE FUNCTION held_at_commit_\(table)();
            """)
    }

    /// Takes ``commitLock`` on `connection`, and lets it go after `patience` at the latest, so
    /// that a test whose commit never overlaps fails instead of waiting forever.
    func takeCommitLock(on connection: PostgresConnection, patience: Duration = .seconds(10)) throws -> @Sendable () -> Void {
        try connection.execute("SELECT pg_advisory_lock($1::bigint)", [Self.commitLock])
        let released = Mutex(false)
        let release: @Sendable () -> Void = {
            guard released.withLock({ done in defer { done = true }; return !done }) else { return }
            _ = try? connection.execute("SELECT pg_advisory_unlock($1::bigint)", [Self.commitLock])
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + patience.dispatchInterval, execute: release)
        return release
    }

    @Test("the rows come back before the commit, which is durable once the call returns")
    func rowsBeforeCommit() throws {
        let database = try TestDatabase(empty: true)
        let connection = try database.connection()
        let holder = try database.connection()
        let observer = try database.connection()
        defer { [connection, holder, observer].forEach { $0.close() } }
        try connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
        try holdCommits(of: "t", on: connection)
        let release = try takeCommitLock(on: holder)
        var handed: [Int] = []
        var visibleWhileHanded = -1
        try connection.queryOverlappingCommit("INSERT INTO t VALUES (1), (2) RETURNING id") { rows in
            handed = (try? rows.map { try $0.int("id") }) ?? []
            visibleWhileHanded = (try? observer.query("SELECT count(*) AS n FROM t").first?.int("n")) ?? -1
            release()
        }
        #expect(handed.sorted() == [1, 2])
        #expect(visibleWhileHanded == 0, "the rows were handed over while the commit waited")
        #expect(try observer.query("SELECT count(*) AS n FROM t").first?.int("n") == 2)
        #expect(try connection.query("SELECT 3 AS n").first?.int("n") == 3, "the connection is out of pipeline mode")
    }

    @Test("a failed statement hands nothing over and leaves the connection usable")
    func failedStatement() throws {
        let database = try TestDatabase(empty: true)
        let connection = try database.connection()
        defer { connection.close() }
        var called = false
        let error = #expect(throws: PostgresError.self) {
            try connection.queryOverlappingCommit("SELECT 1 / (2 - $1::int) AS n", [2]) { _ in called = true }
        }
        #expect(error?.sqlState == "22012")
        #expect(!called)
        #expect(try connection.query("SELECT 1 / (2 - $1::int) AS n", [1]).first?.int("n") == 1)
    }

    @Test("a failed commit is reported after the rows, and nothing of the statement is kept")
    func failedCommit() throws {
        let database = try TestDatabase(empty: true)
        let connection = try database.connection()
        defer { connection.close() }
        try connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
        try holdCommits(of: "t", on: connection, refuse: true)
        var handed = 0
        let error = #expect(throws: PostgresError.self) {
            try connection.queryOverlappingCommit("INSERT INTO t VALUES (1) RETURNING id") { rows in handed = rows.count }
        }
        #expect(handed == 1)
        #expect(error?.message.contains("refused at commit") == true)
        #expect(try connection.query("SELECT count(*) AS n FROM t").first?.int("n") == 0)
    }

    @Test("a job's outcome written while its claim commits waits for the commit, and is kept")
    func outcomeWaitsForClaim() throws {
        let database = try TestDatabase()
        let store = try database.open(lease: PostgresClaimTests.lease)
        defer { store.close() }
        let job = makeJob(createdAt: PostgresClaimTests.anHourAgo)
        try write(store, .submitted([job])).get()
        let holder = try database.connection()
        defer { holder.close() }
        try holdCommits(of: "jobs", on: holder, when: "NEW.status = 'running'")
        let release = try takeCommitLock(on: holder)

        let host = PostgresClaimTests.Host(free: 1)
        let queue = PostgresWorkQueue(target: PostgresConnectionString(database.url), lease: store.lease, claims: store.claims,
                                      logger: quietLogger) { _ in }
        queue.attach(host.value)
        queue.start()
        defer { queue.stop() }
        // Handed to the host while the claim's commit waits for the lock.
        #expect(eventually { host.claimed.withLock { $0 } == [job.id] })
        #expect(queue.claimNext(now: Date())?.id == job.id)

        // It ran at once: its outcome is written now, and must wait for the claim.
        let finish = submit(store, .finished(job.key, attempt: 1, startedAt: Date(), status: .succeeded, result: .integer(1),
                                             error: nil, at: Date(), event: nil, owner: nil, kind: "write_code"))
        #expect(finish.wait(timeout: .now() + 0.5) == .timedOut, "written before the claim committed, it would be refused as stale")
        release()
        #expect(finish.wait() == .success)
        #expect(throws: Never.self) { try finish.result?.get() }
        let rows = try holder.query("SELECT status, node::text AS node FROM jobs WHERE id = $1::uuid", [job.id.description])
        #expect(try rows.first?.string("status") == "succeeded")
        #expect(try rows.first?.string("node") == store.cluster?.nodeID)
    }
}

@Suite("Claim tokens")
struct ClaimTokensTests {
    @Test("a token whose claim is still committing is given out only once the commit is known")
    func tokenWaitsForCommit() {
        let tokens = ClaimTokens()
        let id = JobID()
        let commit = DispatchGroup()
        commit.enter()
        tokens.record([(id, ClaimTokens.Token(attempt: 1, node: "n"))], committing: commit)
        let seen = Mutex<ClaimTokens.Token?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            seen.withLock { $0 = tokens.token(for: id) }
            done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 0.3) == .timedOut, "the token is not given while its claim commits")
        tokens.settle([id])
        commit.leave()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(seen.withLock { $0 } == ClaimTokens.Token(attempt: 1, node: "n"))
        // Settled, a token is given at once; other jobs never waited.
        #expect(tokens.token(for: id)?.attempt == 1)
        #expect(tokens.token(for: JobID()) == nil)
    }
}
