import Foundation
import Glibc
import PostgresTestSupport
import Testing

/// Issue 16's cluster suite: three real `jobpool serve` processes (A, B, C) on one PostgreSQL
/// database, killed, paused and cut off as a real deployment would be. C has `--workers 0` in
/// every scenario, so whatever is asked of C crosses nodes. Slow (each scenario waits out a
/// lease or two) and hard on a small machine, so it runs only when asked:
/// `JOBPOOL_CLUSTER_TESTS=1 swift test --no-parallel --filter ClusterTests` (Tests/run.sh does,
/// with CI=true or JOBPOOL_SLOW_TESTS=1). One scenario at a time: they kill processes and
/// stop a PostgreSQL server.
@Suite("ClusterTests: three jobpool serve processes on one PostgreSQL database", .serialized,
       .enabled(if: ClusterTestsGate.isEnabled, Comment(rawValue: ClusterTestsGate.skipMessage)))
struct ClusterTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// A write_code job that runs `seconds`, with a webhook to `hook` if given.
    static func writeCode(seconds: Double, hook: String? = nil) -> String {
        let webhook = hook.map { #","webhook":{"url":"\#($0)","secret":"\#(secret)"}"# } ?? ""
        return #"{"kind":"write_code","input":{"name":"alex","min_seconds":\#(seconds),"max_seconds":\#(seconds)}\#(webhook)}"#
    }

    @Test("1. submitted on A, waited for and streamed on C (resumed with Last-Event-ID); a cancel sent to C stops it on B")
    func waitStreamAndCancelAcrossNodes() async throws {
        // A runs no jobs here either, so every job runs on B.
        let cluster = try JobpoolCluster(nodes: [("A", 0), ("B", 2), ("C", 0)])
        defer { cluster.stop() }
        let (a, b, c) = (cluster["A"], cluster["B"], cluster["C"])
        let stream = try SSEConnection(port: c.port)
        await stream.read { $0.contains { $0.name == "ready" } }
        let id = try await a.submit(Self.writeCode(seconds: 1))
        let started = await stream.read { $0.contains { $0.name == "job.started" && $0.jobID == id } }
            .first { $0.name == "job.started" && $0.jobID == id }
        let startedID = try #require(started?.id, "C's stream never showed the job start: \(stream.text)")
        stream.socket.disconnect()

        let waited = try await c.client.get("/v1/jobs/\(id)?wait=30")
        #expect(waited.status == 200)
        #expect(waited.json["status"] as? String == "succeeded", "C's wait ended with the job B ran")
        // A client that dropped C's stream after job.started resumes from that ID: it gets the
        // finish, and nothing it had already seen.
        let resumed = try SSEConnection(port: c.port, lastEventID: startedID)
        defer { resumed.socket.disconnect() }
        await resumed.read { $0.contains { $0.name == "job.succeeded" && $0.jobID == id } }
        #expect(resumed.jobEvents.filter { $0.jobID == id }.map(\.name) == ["job.succeeded"], "\(resumed.text)")
        #expect(resumed.jobEvents.allSatisfy { ($0.id ?? 0) > startedID })

        let long = try await a.submit(Self.writeCode(seconds: 120))
        #expect(try await eventually { try cluster.runningNode(of: long)?.name == "B" }, "the long job never ran on B")
        #expect(try await b.metric("jobpool_workers_busy") == 1)
        let began = ContinuousClock.now
        let cancelled = try await c.client.post("/v1/jobs/\(long)/cancel")
        #expect(cancelled.status == 200, "\(cancelled.text)")
        #expect(cancelled.json["status"] as? String == "cancelled")
        #expect(ContinuousClock.now - began < .seconds(5), "a cross-node cancel takes about a second at worst")
        #expect(try await eventually { try await b.metric("jobpool_workers_busy") == 0 }, "B's worker is still busy with the cancelled job")
        // A, where the job was submitted, learns of B's claim and the cancel through the table
        // (it looks at once when the cancel request reaches it), within about a second.
        #expect(try await eventually(timeout: .seconds(5)) { try await a.client.get("/v1/jobs/\(long)").json["status"] as? String == "cancelled" })
        #expect(try cluster.finalEventCount(of: long) == 1)
    }

    @Test("2. kill -9 of the node running a job: another node runs attempt 2, attempt 1 is recorded lost, it succeeds once")
    func killNineMidJob() async throws {
        let cluster = try JobpoolCluster(nodes: [("A", 2), ("B", 2), ("C", 0)])
        defer { cluster.stop() }
        let c = cluster["C"]
        let id = try await c.submit(Self.writeCode(seconds: 3))
        var runner: ClusterNode?
        #expect(try await eventually { runner = try cluster.runningNode(of: id); return runner != nil })
        let victim = try #require(runner)
        victim.kill9()

        // The lease (3 s) runs out, a sweep requeues the job as attempt 2, the other node runs it.
        let waited = try await c.client.get("/v1/jobs/\(id)?wait=40")
        #expect(waited.json["status"] as? String == "succeeded", "\(waited.text)\n\(cluster.logs)")
        #expect(waited.json["attempt"] as? Int == 2)
        #expect(try cluster.attempts(of: id) == ["1 lost", "2 succeeded"])
        #expect(try cluster.finalEventCount(of: id) == 1)
        let survivor = cluster.nodes.first { $0.name != victim.name && $0.name != "C" }!
        // The sweep runs on every node, one at a time: C (no workers) may have made the rescue.
        let rescued = (try await survivor.metric("jobpool_rescued_jobs_total") ?? 0) + (try await c.metric("jobpool_rescued_jobs_total") ?? 0)
        #expect(rescued == 1, "the live nodes counted \(rescued) rescued jobs")
    }

    @Test("3. kill -STOP past the lease: another node finishes the job; after kill -CONT the late write is refused, with no second event or webhook")
    func pausedNodeWritesLate() async throws {
        let sink = try FetchTargetServer { _ in (.zero, .page(status: 200, body: [])) }
        defer { sink.stop() }
        let cluster = try JobpoolCluster(nodes: [("A", 2), ("B", 2), ("C", 0)])
        defer { cluster.stop() }
        let c = cluster["C"]
        let stream = try SSEConnection(port: c.port)
        defer { stream.socket.disconnect() }
        await stream.read { $0.contains { $0.name == "ready" } }

        let id = try await c.submit(Self.writeCode(seconds: 3, hook: "\(sink.url)/hook"))
        var runner: ClusterNode?
        #expect(try await eventually { runner = try cluster.runningNode(of: id); return runner != nil })
        let paused = try #require(runner)
        paused.send(SIGSTOP)
        let waited = try await c.client.get("/v1/jobs/\(id)?wait=40")
        #expect(waited.json["status"] as? String == "succeeded", "\(waited.text)\n\(cluster.logs)")
        #expect(waited.json["attempt"] as? Int == 2, "the job was finished by attempt 1, on the paused node")
        let result = try #require(waited.json["result"] as? [String: Any])
        #expect(try await eventually(timeout: .seconds(15)) { sink.requestCount == 1 }, "the finishing node's webhook")

        // Woken, the paused node's worker ends its attempt 1 and writes its result: refused.
        paused.send(SIGCONT)
        #expect(try await eventually(timeout: .seconds(15)) { try await paused.metric("jobpool_stale_writes_total") ?? 0 >= 1 },
                "the paused node's late write was not refused (or never made)\n\(paused.log.suffix(4000))")
        // Had the late write been taken, its event and webhook would follow it within a
        // second (the nodes read the event log about once a second, and a webhook goes at
        // once): three seconds of quiet after the refusal are the proof that none came.
        try await Task.sleep(for: .seconds(3))
        #expect(sink.requestCount == 1, "a second webhook was sent")
        await stream.read(timeout: .milliseconds(500)) { _ in false }
        #expect(stream.jobEvents.filter { $0.jobID == id && $0.name == "job.succeeded" }.count == 1, "\(stream.text)")
        #expect(try cluster.finalEventCount(of: id) == 1)
        #expect(try cluster.attempts(of: id) == ["1 lost", "2 succeeded"])
        let after = try await c.client.get("/v1/jobs/\(id)").json
        #expect(after["attempt"] as? Int == 2)
        #expect(NSDictionary(dictionary: after["result"] as? [String: Any] ?? [:]).isEqual(to: result), "the result changed")
    }
}

/// When the cluster suite runs (outside its type: a suite's traits cannot name its own members).
enum ClusterTestsGate {
    static let isAsked = ProcessInfo.processInfo.environment["JOBPOOL_CLUSTER_TESTS"] == "1"
    static let isEnabled = isAsked && PostgresTestCluster.isAvailable
    static let skipMessage = isAsked
        ? PostgresTestCluster.skipMessage
        : "The cluster tests (three jobpool serve processes on PostgreSQL, a few minutes) run only with JOBPOOL_CLUSTER_TESTS=1; Tests/run.sh sets it with CI=true or JOBPOOL_SLOW_TESTS=1."
}
