import Foundation
import Testing

@Suite("Batch submission and statistics")
struct BatchAndStatsTests {
    @Test("a valid batch creates every job, in order")
    func validBatch() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.post("/v1/jobs/batch", #"""
            {"jobs": [
              {"kind":"write_code","input":{"name":"one","max_seconds":0}},
              {"kind":"write_code","priority":3,"input":{"name":"two","max_seconds":0}},
              {"kind":"write_code","delay_seconds":3600,"input":{"name":"three"}}
            ]}
            """#)
        #expect(response.status == 202, "\(response.text)")
        let jobs = try #require(response.json["jobs"] as? [[String: Any]])
        #expect(jobs.map { ($0["input"] as? [String: Any])?["name"] as? String } == ["one", "two", "three"])
        #expect(jobs[2]["status"] as? String == "scheduled")
        #expect((try await server.client.get("/v1/jobs").json["jobs"] as? [Any])?.count == 3)
    }

    @Test("a batch with two bad items creates nothing and lists both indexes")
    func twoBadItems() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.post("/v1/jobs/batch", #"""
            {"jobs": [
              {"kind":"write_code","input":{"name":"fine"}},
              {"kind":"no_such_kind","input":{}},
              {"kind":"write_code","input":{"name":"fine too"}},
              {"kind":"write_code","input":{"name":""}}
            ]}
            """#)
        #expect(response.status == 422)
        #expect(response.header("Content-Type") == "application/problem+json")
        let errors = try #require(response.json["errors"] as? [[String: Any]])
        #expect(errors.compactMap { $0["index"] as? Int } == [1, 3])
        #expect(errors.compactMap { $0["pointer"] as? String } == ["/jobs/1/kind", "/jobs/3/input/name"])
        #expect((try await server.client.get("/v1/jobs").json["jobs"] as? [Any])?.count == 0)
    }

    @Test("empty, oversized and malformed batches are refused")
    func refusedShapes() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let item = #"{"kind":"write_code","input":{"name":"x"}}"#
        let tooMany = #"{"jobs":["# + Array(repeating: item, count: 1001).joined(separator: ",") + "]}"
        for body in [#"{"jobs":[]}"#, tooMany, #"{"jobs":{}}"#, #"[1]"#, #"{"jobs":[1],"extra":1}"#] {
            let response = try await server.client.post("/v1/jobs/batch", body)
            #expect(response.status == 422, "\(body.prefix(60))")
        }
        #expect(try await server.client.post("/v1/jobs/batch", "{").status == 400)
    }

    @Test("stats count jobs by state and kind, queue depth, busy workers and the oldest queued age")
    func stats() async throws {
        let server = try TestServer { $0.executor.workers = 1 }
        defer { server.stop() }
        let blocker = try await server.client.submitWriteCode(name: "blocker", min: 30, max: 30)
        #expect(try await eventually { try await server.client.get("/v1/stats").json["workers_busy"] as? Int == 1 })
        _ = try await server.client.submitWriteCode(name: "waiting")
        _ = try await server.client.post("/v1/jobs", #"{"kind":"write_code","delay_seconds":3600,"input":{"name":"later"}}"#)
        var stats = try await server.client.get("/v1/stats")
        #expect(try await eventually {
            stats = try await server.client.get("/v1/stats")
            return (stats.json["oldest_queued_age_seconds"] as? Double ?? 0) > 0
        })
        let byState = try #require(stats.json["by_state"] as? [String: Int])
        #expect(byState == ["scheduled": 1, "queued": 1, "running": 1, "succeeded": 0, "failed": 0, "cancelled": 0])
        #expect((stats.json["by_kind"] as? [String: [String: Int]])?["write_code"]?["queued"] == 1)
        #expect((stats.json["by_kind"] as? [String: [String: Int]])?["fetch_url"]?["queued"] == 0)
        #expect(stats.json["queue_depth"] as? Int == 1)
        #expect(stats.json["workers"] as? Int == 1)
        #expect(stats.json["workers_busy"] as? Int == 1)
        #expect(try await server.client.post(try #require(blocker.header("Location")) + "/cancel").status == 200)
    }

    @Test("with API keys, stats show only the caller's jobs")
    func tenantStats() async throws {
        let alice = "alice-key-0123456789abcdef", bob = "bob-key-0123456789abcdef"
        let server = try TestServer { $0.apiKeys = [alice, bob] }
        defer { server.stop() }
        _ = try await server.client.post("/v1/jobs", #"{"kind":"write_code","delay_seconds":3600,"input":{"name":"a"}}"#,
                                         headers: ["Authorization": "Bearer \(alice)"])
        let aliceStats = try await server.client.get("/v1/stats", headers: ["Authorization": "Bearer \(alice)"])
        let bobStats = try await server.client.get("/v1/stats", headers: ["Authorization": "Bearer \(bob)"])
        #expect((aliceStats.json["by_state"] as? [String: Int])?["scheduled"] == 1)
        #expect((bobStats.json["by_state"] as? [String: Int])?["scheduled"] == 0)
        #expect(try await server.client.get("/v1/stats").status == 401)
    }
}
