import Foundation
import Testing

/// The cluster suite's scenarios about what the nodes share on the database: the listener's
/// connection, and idempotency keys.
extension ClusterTests {
    @Test("4. A's listener backend is terminated: waits on A still finish, and the listener reconnects")
    func listenerTerminated() async throws {
        let cluster = try JobpoolCluster(nodes: [("A", 0), ("B", 2), ("C", 0)], start: false)
        defer { cluster.stop() }
        let (a, c) = (cluster["A"], cluster["C"])
        // pg_stat_activity cannot tell which process a Unix-socket backend serves, so A starts
        // alone and its listener is the only one on the database.
        try a.start()
        var listeners: Set<Int> = []
        #expect(try await eventually { listeners = try cluster.listenerBackends(); return listeners.count == 1 })
        let aListener = try #require(listeners.first)
        try cluster["B"].start()
        try c.start()
        #expect(try await eventually { try cluster.listenerBackends().count == 3 })

        #expect(try cluster.query("SELECT pg_terminate_backend($1::int) AS done", ["\(aListener)"]).first?.bool("done") == true)
        // With no listener, A learns of the job's changes from its own look at the tables.
        let id = try await c.submit(Self.writeCode(seconds: 0.5))
        let began = ContinuousClock.now
        let waited = try await a.client.get("/v1/jobs/\(id)?wait=30")
        #expect(waited.json["status"] as? String == "succeeded", "\(waited.text)")
        #expect(ContinuousClock.now - began < .seconds(10))

        #expect(try await eventually { a.log.contains("The notification listener reconnected") }, "\(a.log.suffix(3000))")
        #expect(try await eventually {
            let now = try cluster.listenerBackends()
            return now.count == 3 && !now.contains(aListener)
        }, "A has no listener connection again")
        let later = try await c.submit(Self.writeCode(seconds: 0))
        let again = try await a.client.get("/v1/jobs/\(later)?wait=30")
        #expect(again.json["status"] as? String == "succeeded")
    }

    @Test("6. one Idempotency-Key sent at the same moment to A and B makes one job; both answers carry its ID")
    func idempotencyAcrossNodes() async throws {
        let cluster = try JobpoolCluster(nodes: [("A", 2), ("B", 2), ("C", 0)])
        defer { cluster.stop() }
        let (a, b) = (cluster["A"], cluster["B"])
        let body = Self.writeCode(seconds: 0)
        // Ten rounds: each is a race between the two nodes' transactions, won either way.
        for round in 0..<10 {
            let key = "cluster-\(round)-\(UUID().uuidString)"
            async let onA = a.client.post("/v1/jobs", body, headers: ["Idempotency-Key": key])
            async let onB = b.client.post("/v1/jobs", body, headers: ["Idempotency-Key": key])
            let (first, second) = try await (onA, onB)
            #expect([first.status, second.status].allSatisfy { $0 == 200 || $0 == 202 },
                    "round \(round): \(first.status) \(first.text) / \(second.status) \(second.text)")
            let ids = [first.json["id"] as? String, second.json["id"] as? String]
            #expect(ids[0] != nil && ids[0] == ids[1], "round \(round): two jobs for one key: \(ids)")
            let count = try cluster.query("SELECT count(*) AS n FROM jobs WHERE idempotency_key = $1", [key]).first?.int("n")
            #expect(count == 1, "round \(round)")
        }
    }
}
