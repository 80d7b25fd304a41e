import Foundation
import Postgres
import StoreTestSupport
import Testing
@testable import PostgresStore

/// How the writers' statements are planned: every join an index lookup, whatever the table's
/// statistics, and the triggers' joins of transition tables hashed whatever the session says.
@Suite("PostgreSQL writers' plans", .needsPostgres)
struct PostgresWriterPlanTests {
    @Test("a batch of finishes is planned as lookups by job ID even when the plan was made on a new, empty table")
    func finishPlanIgnoresMissingStatistics() throws {
        let database = try TestDatabase()
        let store = try database.open()
        store.close()
        let setup = try database.connection()
        defer { setup.close() }
        // A new database, before any ANALYZE (none may run during the test). A prepared
        // statement keeps the generic plan it was given then; left to itself, the planner
        // hashed the batch against every unfinished job and every finished one.
        try setup.execute("ALTER TABLE jobs SET (autovacuum_enabled = false)")
        let nodeID = UUID().uuidString.lowercased()
        let writer = try PostgresConnection(connectingTo: PostgresConnectionString(database.url),
                                            settings: PostgresJobStore.writerSettings(nodeID: nodeID)
                                                + [(name: "plan_cache_mode", value: "force_generic_plan")])
        defer { writer.close() }
        try writer.executeScript("""
            PREPARE finish(uuid[], int[], text[], text[], text[], text[], int[], bigint[], bigint[], text[], text[], bytea[],
                           uuid[], uuid) AS \(PostgresJobStore.finishSQL)
            """)
        let plan = try writer.query("EXPLAIN EXECUTE finish(\(Array(repeating: "NULL", count: 14).joined(separator: ", ")))")
            .map { try $0.string("QUERY PLAN") }.joined(separator: "\n")
        #expect(!plan.contains("Hash Join") && !plan.contains("Merge Join") && !plan.contains("Bitmap"), "\(plan)")
        #expect(!plan.contains("Seq Scan on jobs"), "\(plan)")
        // Both reads of `jobs` (the update and the check for a finish already written) by key.
        #expect(plan.components(separatedBy: "Index Cond: (id = v").count - 1 == 2, "\(plan)")
    }

    @Test("a statement that cannot avoid a scan the writers price out is not compiled by JIT in their sessions, nor the claimer's")
    func pricedOutPlansAreNotCompiled() throws {
        let database = try TestDatabase()
        let store = try database.open()
        store.close()
        let target = PostgresConnectionString(database.url)
        let sessions = [try PostgresConnection(connectingTo: target, settings: PostgresJobStore.writerSettings(nodeID: UUID().uuidString.lowercased())),
                        try PostgresWorkQueue.claimerConnection(to: target)]
        defer { sessions.forEach { $0.close() } }
        for session in sessions {
            // No index serves this filter: the sequential scan stays, at a vast cost.
            let plan = try session.query("EXPLAIN (ANALYZE) SELECT count(*) FROM job_counts WHERE count > -1")
                .map { try $0.string("QUERY PLAN") }.joined(separator: "\n")
            #expect(plan.contains("Seq Scan on job_counts"), "\(plan)")
            #expect(!plan.contains("JIT:"), "\(plan)")
        }
    }

    @Test("every trigger that joins a statement's old and new rows keeps hash joins on in the writers' sessions")
    func transitionTableJoinsAreHashed() throws {
        let database = try TestDatabase()
        let store = try database.open()
        store.close()
        let connection = try database.connection()
        defer { connection.close() }
        // A transition table has no index: a nested loop over two of them costs the square of
        // the batch (1,700 finishes took 5 s).
        let functions = try connection.query("""
            SELECT DISTINCT p.proname AS name, coalesce(array_to_string(p.proconfig, ','), '') AS config
            FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
            WHERE t.tgrelid IN ('jobs'::regclass, 'webhook_events'::regclass)
              AND t.tgoldtable IS NOT NULL AND t.tgnewtable IS NOT NULL
            """).map { (try $0.string("name"), try $0.string("config")) }
        #expect(functions.count >= 3, "\(functions)")
        for (name, config) in functions {
            #expect(config.contains("enable_hashjoin=on"), "\(name): \(config)")
        }
        // Planned once per session for its first call's row counts: never a nested loop.
        for name in ["jobpool_log_changed", "jobpool_count_changed"] {
            #expect(functions.first { $0.0 == name }?.1.contains("enable_nestloop=off") == true, "\(name)")
        }
        // A plan priced out costs enough for JIT, which compiled every execution first.
        for (name, config) in functions {
            #expect(config.contains("jit=off"), "\(name): \(config)")
        }
    }
}
