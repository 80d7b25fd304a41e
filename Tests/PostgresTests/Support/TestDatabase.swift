import Foundation
import JobCore
import Logging
import Postgres
import PostgresTestSupport
import StoreTestSupport
import Testing
@testable import PostgresStore

/// The PostgreSQL suites run when PostgreSQL's programs are installed, and always under CI.
extension Trait where Self == ConditionTrait {
    static var needsPostgres: Self {
        .enabled(if: PostgresTestCluster.isAvailable, Comment(rawValue: PostgresTestCluster.skipMessage))
    }
}

/// A database of its own for one test, in the test process's cluster. It is not dropped when
/// the value goes (Swift may end a local's life at its last use, while the store still runs);
/// the cluster's folder is removed with everything in it when the test process exits.
final class TestDatabase: Sendable {
    let url: String
    private let cluster: PostgresTestCluster

    /// With jobpool's schema (copied from the template), or `empty`.
    init(empty: Bool = false) throws {
        cluster = try PostgresTestCluster.shared()
        url = try empty ? cluster.makeEmptyDatabase() : cluster.makeDatabase()
    }

    /// The store, started (its writer thread running).
    func open(readerCount: Int = 4, lease: NodeLeaseSettings = NodeLeaseSettings()) throws -> PostgresJobStore {
        let store = try PostgresJobStore(url: url, logger: quietLogger, readerCount: readerCount, healthCheckInterval: .milliseconds(100),
                                         lease: lease)
        store.start()
        return store
    }

    /// A plain connection beside the store's.
    func connection() throws -> PostgresConnection {
        try PostgresConnection(connectingTo: PostgresConnectionString(url))
    }

    /// Holds both of the store's writers inside a commit: another connection locks `jobs`, the
    /// submissions' writer takes one submission (`held`) and the other writer a cancel request
    /// for no job, both wait on the lock, and everything applied after them queues up for one
    /// transaction in its lane. `COMMIT` on `blocker` lets them go.
    func holdWriter(of store: PostgresJobStore) throws -> (blocker: PostgresConnection, held: PendingWrite) {
        let blocker = try connection()
        try blocker.execute("BEGIN")
        try blocker.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")
        let held = submit(store, .submitted([makeJob(createdAt: epoch.addingTimeInterval(-1))]))
        _ = submit(store, .cancelRequested(makeJob(createdAt: epoch).key, at: epoch))
        // Both writers wait on the lock: nothing applied from now on can join their batches.
        #expect(eventually {
            (try? blocker.query("SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND relation = 'jobs'::regclass").first?.int("n")) == 2
        }, "both writers wait on the table lock")
        #expect(store.pendingWrites == 0, "the writers took the first submission and the first change")
        return (blocker, held)
    }

    /// The database's name.
    var name: String { PostgresTestCluster.databaseName(url: url) }
}

let quietLogger: Logger = {
    var logger = Logger(label: "postgres-store-test")
    logger.logLevel = .critical
    return logger
}()

/// Every job's count by owner, kind and state from a GROUP BY over the rows themselves.
func groupedCounts(_ connection: PostgresConnection) throws -> [JobCounts.Key: Int] {
    var counts: [JobCounts.Key: Int] = [:]
    for row in try connection.query("SELECT owner, kind, status, count(*) AS n FROM jobs GROUP BY 1, 2, 3") {
        counts[JobCounts.Key(owner: try row.optionalString("owner"), kind: try row.string("kind"),
                             state: JobState(rawValue: try row.string("status"))!)] = try row.int("n")
    }
    return counts
}

/// True when the store refused `change` as stale (a write about an attempt that is no longer
/// this node's); throws for any other failure.
func writeIsStale(_ store: any JobStore, _ change: StoreChange) throws -> Bool {
    switch try write(store, change) {
    case .success: return false
    case .failure(let error) where error.isStale: return true
    case .failure(let error): throw error
    }
}
