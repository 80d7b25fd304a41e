import Foundation
import Testing

@Suite("Scheduling and priorities")
struct SchedulingTests {
    @Test("delay_seconds makes a job scheduled, and it runs when due")
    func delayRuns() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let submitted = try await server.client.post("/v1/jobs", #"{"kind":"write_code","delay_seconds":0.5,"input":{"name":"later","max_seconds":0}}"#)
        #expect(submitted.status == 202)
        #expect(submitted.json["status"] as? String == "scheduled")
        #expect(submitted.json["next_attempt_at"] as? String != nil)
        let path = try #require(submitted.header("Location"))
        let waited = try await server.client.get(path + "?wait=10")
        #expect(waited.json["status"] as? String == "succeeded")
        let created = try #require(submitted.json["created_at"] as? String)
        let started = try #require(waited.json["started_at"] as? String)
        #expect(started > created)
    }

    @Test("a scheduled job can be cancelled, and never runs")
    func cancelScheduled() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let runAt = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
        let submitted = try await server.client.post("/v1/jobs", #"{"kind":"write_code","run_at":"\#(runAt)","input":{"name":"never"}}"#)
        #expect(submitted.json["status"] as? String == "scheduled")
        let path = try #require(submitted.header("Location"))
        let cancelled = try await server.client.post(path + "/cancel")
        #expect(cancelled.status == 200)
        #expect(cancelled.json["status"] as? String == "cancelled")
        #expect(cancelled.json["started_at"] is NSNull)
        // On PostgreSQL the counts are read from the store, which the cancel reaches a few
        // milliseconds after its answer.
        #expect(try await eventually(timeout: .seconds(5)) {
            let stats = try await server.client.get("/v1/stats")
            return (stats.json["by_state"] as? [String: Any])?["scheduled"] as? Int == 0
        })
    }

    @Test("run_at in the past runs now; bad or doubled schedules are 422")
    func runAtEdges() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let past = try await server.client.post("/v1/jobs", #"{"kind":"write_code","run_at":"2020-01-01T00:00:00Z","input":{"name":"now","max_seconds":0}}"#)
        #expect(past.status == 202)
        #expect(past.json["status"] as? String != "scheduled")
        for body in [
            #"{"kind":"write_code","run_at":"tomorrow","input":{"name":"x"}}"#,
            #"{"kind":"write_code","run_at":"2030-01-01T00:00:00Z","delay_seconds":1,"input":{"name":"x"}}"#,
            #"{"kind":"write_code","delay_seconds":-1,"input":{"name":"x"}}"#,
            #"{"kind":"write_code","priority":11,"input":{"name":"x"}}"#,
            #"{"kind":"write_code","time_limit_seconds":0,"input":{"name":"x"}}"#,
        ] {
            let refused = try await server.client.post("/v1/jobs", body)
            #expect(refused.status == 422, "\(body)")
        }
        #expect((try await server.client.get("/v1/jobs").json["jobs"] as? [Any])?.count == 1)
    }

    @Test("higher priorities run first, FIFO within a priority")
    func priorityOrder() async throws {
        let server = try TestServer { $0.executor.workers = 1 }
        defer { server.stop() }
        let blocker = try await server.client.submitWriteCode(name: "blocker", min: 30, max: 30)
        #expect(try await eventually { try await server.client.get("/v1/stats").json["workers_busy"] as? Int == 1 })
        var paths: [String: String] = [:]
        for (name, priority) in [("low", -5), ("mid1", 0), ("high", 5), ("mid2", 0)] {
            let response = try await server.client.post("/v1/jobs", #"{"kind":"write_code","priority":\#(priority),"input":{"name":"\#(name)","max_seconds":0}}"#)
            #expect(response.json["priority"] as? Int == priority)
            paths[name] = response.header("Location")
        }
        // Free the only worker: the queue now drains in priority order.
        #expect(try await server.client.post(try #require(blocker.header("Location")) + "/cancel").status == 200)
        var started: [(String, String)] = []
        for (name, path) in paths {
            let job = try await server.client.get(path + "?wait=10")
            started.append((name, try #require(job.json["started_at"] as? String)))
        }
        #expect(started.sorted { $0.1 < $1.1 }.map(\.0) == ["high", "mid1", "mid2", "low"])
    }
}
