import Foundation
import JobpoolApp
import Postgres
import PostgresTestSupport
import Testing

/// Two in-process servers (two nodes) on one PostgreSQL database: waits, cancels and event
/// streams on one node see the jobs the other runs. Node B has no workers (`--workers 0`), so
/// every job here runs on node A, wherever it was submitted.
@Suite("Across nodes on PostgreSQL: waits, cancels, event streams", .enabled(if: PostgresTestCluster.isAvailable, Comment(rawValue: PostgresTestCluster.skipMessage)))
struct CrossNodeTests {
    /// Two servers on one fresh database; stop both.
    func twoNodes() throws -> (a: TestServer, b: TestServer) {
        let store = StoreKind.postgres.makeStore()
        let a = try TestServer { $0.store = store }
        do {
            return (a, try TestServer { $0.store = store; $0.executor.workers = 0 })
        } catch {
            a.stop()
            throw error
        }
    }

    @Test("?wait on node B answers when the job node A runs finishes")
    func waitOnOtherNode() async throws {
        let (a, b) = try twoNodes()
        defer { b.stop(); a.stop() }
        let id = try #require(try await a.client.submitWriteCode(min: 1, max: 1).json["id"] as? String)
        let started = ContinuousClock.now
        let waited = try await b.client.get("/v1/jobs/\(id)?wait=20")
        #expect(waited.status == 200)
        #expect(waited.json["status"] as? String == "succeeded", "node B's wait ended with the job A ran")
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect((waited.json["result"] as? [String: Any])?["name"] as? String == "alex")
    }

    @Test("a transaction left open below committed events holds the event log back, not node B's ?wait: B reads the job from the table")
    func waitWhileEventLogIsHeldBack() async throws {
        let store = StoreKind.postgres.makeStore()
        guard case .postgres(let url) = store else { return }
        let a = try TestServer { $0.store = store }
        defer { a.stop() }
        let b = try TestServer { $0.store = store; $0.executor.workers = 0 }
        defer { b.stop() }
        // A transaction that took an event ID and stays open (a writer mid-commit, stalled):
        // every event after it waits, since it might still commit below them.
        let stalled = try PostgresConnection(connectingTo: PostgresConnectionString(url))
        defer { stalled.close() }
        try stalled.execute("BEGIN")
        try stalled.execute("""
            INSERT INTO job_events (at, job_id, event, status, kind, attempt, max_attempts)
            VALUES (0, gen_random_uuid(), 'job.created', 'queued', 'write_code', 1, 3)
            """)
        let id = try #require(try await a.client.submitWriteCode(min: 1, max: 1).json["id"] as? String)
        let started = ContinuousClock.now
        let waited = try await b.client.get("/v1/jobs/\(id)?wait=20")
        #expect(waited.json["status"] as? String == "succeeded", "B's wait ended with the job A ran, though the log was held back")
        #expect(ContinuousClock.now - started < .seconds(10))
        try stalled.execute("ROLLBACK")
    }

    @Test("a job submitted to node B, which has no workers, runs on node A; B's Prefer: wait and ?wait answer with it")
    func waitOnSubmittingNode() async throws {
        let (a, b) = try twoNodes()
        defer { b.stop(); a.stop() }
        // Prefer: wait holds B's reply while A claims, runs and finishes the job.
        let synchronous = try await b.client.submitWriteCode(headers: ["Prefer": "wait=20"])
        #expect(synchronous.status == 200)
        #expect(synchronous.json["status"] as? String == "succeeded", "B's Prefer: wait ended with the job A ran")
        // A job finished elsewhere before B hands it off is read back, not waited on forever.
        let id = try #require(try await b.client.submitWriteCode().json["id"] as? String)
        let started = ContinuousClock.now
        let waited = try await b.client.get("/v1/jobs/\(id)?wait=20")
        #expect(waited.json["status"] as? String == "succeeded")
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test("/v1/stats on either node counts the whole cluster's jobs, those the other node ran and finished included")
    func statsAcrossNodes() async throws {
        let (a, b) = try twoNodes()
        defer { b.stop(); a.stop() }
        for _ in 0..<3 {
            let done = try await a.client.submitWriteCode(headers: ["Prefer": "wait=20"])
            #expect(done.json["status"] as? String == "succeeded")
        }
        let long = try #require(try await b.client.submitWriteCode(min: 60, max: 60).json["id"] as? String)
        #expect(try await eventually { try await a.client.get("/v1/jobs/\(long)").json["status"] as? String == "running" })
        for node in [a, b] {
            // A's finishes and B's submission commit on separate connections (the writer lanes):
            // the counts agree once all of them have.
            #expect(try await eventually(timeout: .seconds(5)) {
                let byState = try await node.client.get("/v1/stats").json["by_state"] as? [String: Any]
                return byState?["succeeded"] as? Int == 3 && byState?["running"] as? Int == 1
            })
            let stats = try await node.client.get("/v1/stats")
            let byState = try #require(stats.json["by_state"] as? [String: Any])
            #expect(byState["succeeded"] as? Int == 3, "node \(node === a ? "A" : "B") counts the jobs A finished")
            #expect(byState["running"] as? Int == 1, "and the job running on A")
            let writeCode = (stats.json["by_kind"] as? [String: Any])?["write_code"] as? [String: Any]
            #expect(writeCode?["succeeded"] as? Int == 3)
        }
        #expect(try await b.client.get("/v1/stats").json["workers"] as? Int == 0, "the workers stay each node's own")
        _ = try await b.client.post("/v1/jobs/\(long)/cancel")
    }

    @Test("a cancel sent to node B stops the job running on node A, and B answers with it cancelled")
    func cancelOnOtherNode() async throws {
        let (a, b) = try twoNodes()
        defer { b.stop(); a.stop() }
        let id = try #require(try await a.client.submitWriteCode(min: 60, max: 60).json["id"] as? String)
        #expect(try await eventually { try await b.client.get("/v1/jobs/\(id)").json["status"] as? String == "running" })
        let started = ContinuousClock.now
        let cancelled = try await b.client.post("/v1/jobs/\(id)/cancel")
        #expect(cancelled.status == 200)
        #expect(cancelled.json["status"] as? String == "cancelled")
        #expect(ContinuousClock.now - started < .seconds(3), "within about a second, plus the HTTP round trips")
        #expect(try await eventually { try await a.client.get("/v1/jobs/\(id)").json["status"] as? String == "cancelled" }, "node A stopped it")
    }

    @Test("a cancel sent to the node a job waits on, just after the other node claimed it, stops it there: never 'cancelled' while it runs on")
    func cancelJustClaimedElsewhere() async throws {
        let (a, b) = try twoNodes()
        defer { b.stop(); a.stop() }
        // B has no workers: a job submitted to B waits in B's memory until B's next look at the
        // table (about a second) shows that A claimed it. The cancel lands in that second (the
        // test sees A run the job within ~20 ms of the claim). B used to cancel its copy at
        // once and answer `cancelled` while A ran the job to the end.
        for round in 0..<3 {
            let id = try #require(try await b.client.submitWriteCode(min: 60, max: 60).json["id"] as? String)
            #expect(try await eventually { try await a.client.get("/v1/jobs/\(id)").json["status"] as? String == "running" })
            let answer = try await b.client.post("/v1/jobs/\(id)/cancel")
            #expect(answer.status == 200 || answer.status == 202, "round \(round): \(answer.text)")
            if answer.status == 200 { #expect(answer.json["status"] as? String == "cancelled") }
            #expect(try await eventually { try await a.client.get("/v1/jobs/\(id)").json["status"] as? String == "cancelled" },
                    "round \(round): node A stopped the job B said it cancelled")
            #expect(try await eventually { try await b.client.get("/v1/jobs/\(id)").json["status"] as? String == "cancelled" })
        }
    }

    @Test("one Idempotency-Key sent to both nodes at the same moment makes one job, and both answers carry it")
    func idempotencyKeyRace() async throws {
        let (a, b) = try twoNodes()
        defer { b.stop(); a.stop() }
        let body = #"{"kind":"write_code","input":{"name":"alex","max_seconds":0}}"#
        // Each round is a race between the nodes' transactions: the store's unique index lets
        // one win, and the other node answers with the winner's job (it used to answer 503).
        for round in 0..<10 {
            let headers = ["Idempotency-Key": "race-\(round)-\(UUID().uuidString)"]
            async let onA = a.client.post("/v1/jobs", body, headers: headers)
            async let onB = b.client.post("/v1/jobs", body, headers: headers)
            let (first, second) = try await (onA, onB)
            #expect([first.status, second.status].allSatisfy { $0 == 200 || $0 == 202 }, "\(first.text) / \(second.text)")
            #expect(first.json["id"] as? String != nil && first.json["id"] as? String == second.json["id"] as? String)
        }
    }

    @Test("GET /v1/events on node B carries node A's changes with the same IDs; a reconnect to B resumes after A's ID")
    func eventsAcrossNodes() async throws {
        let (a, b) = try twoNodes()
        defer { b.stop(); a.stop() }
        let onA = try SSEConnection(port: a.port)
        let onB = try SSEConnection(port: b.port)
        for stream in [onA, onB] { await stream.read { $0.contains { $0.name == "ready" } } }
        let first = try #require(try await a.client.submitWriteCode().json["id"] as? String)
        let done: ([SSEConnection.Event]) -> Bool = { $0.contains { $0.name == "job.succeeded" && $0.jobID == first } }
        await onA.read(until: done)
        await onB.read(until: done)
        let seenOnA = onA.jobEvents.map { "\($0.id ?? 0) \($0.name)" }
        #expect(seenOnA.count == 3)
        #expect(onB.jobEvents.map { "\($0.id ?? 0) \($0.name)" } == seenOnA, "the same events, IDs and order on both nodes")
        let lastSeen = try #require(onA.events.compactMap(\.id).max())
        onA.socket.disconnect()

        let missed = try #require(try await a.client.submitWriteCode().json["id"] as? String)
        let resumed = try SSEConnection(port: b.port, lastEventID: lastSeen)
        await resumed.read { $0.contains { $0.name == "job.succeeded" && $0.jobID == missed } }
        #expect(resumed.jobEvents.map(\.name) == ["job.created", "job.started", "job.succeeded"])
        #expect(resumed.jobEvents.allSatisfy { $0.jobID == missed && ($0.id ?? 0) > lastSeen })
        #expect(!resumed.events.contains { $0.name == "reset" })
    }
}
