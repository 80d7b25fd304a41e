import Foundation
import Testing

@Suite("List and cancel")
struct ListAndCancelTests {
    @Test("the list pages newest first with an opaque cursor and filters by status and kind")
    func listPaging() async throws {
        let server = try TestServer { $0.executor.workers = 1 }
        defer { server.stop() }
        var ids: [String] = []
        for index in 0..<7 {
            let response = try await server.client.submitWriteCode(name: "job\(index)", min: 30, max: 30)
            ids.append(try #require(response.json["id"] as? String))
        }
        var listed: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let query = cursor.map { "&cursor=\($0)" } ?? ""
            let page = try await server.client.get("/v1/jobs?limit=3\(query)")
            #expect(page.status == 200)
            let jobs = try #require(page.json["jobs"] as? [[String: Any]])
            #expect(jobs.count <= 3)
            listed += jobs.compactMap { $0["id"] as? String }
            cursor = page.json["next_cursor"] as? String
            pages += 1
        } while cursor != nil && pages < 10
        #expect(listed == ids.reversed())

        let queued = try await server.client.get("/v1/jobs?status=queued&kind=write_code&limit=500")
        #expect((queued.json["jobs"] as? [Any])?.count == 6)
        let running = try await server.client.get("/v1/jobs?status=running")
        #expect((running.json["jobs"] as? [[String: Any]])?.first?["id"] as? String == ids[0])
        for id in ids { _ = try await server.client.post("/v1/jobs/\(id)/cancel") }
    }

    @Test("cancel: a queued job at once, a running job promptly, a finished job is a 409")
    func cancel() async throws {
        let server = try TestServer { $0.executor.workers = 1 }
        defer { server.stop() }
        let running = try #require(try await server.client.submitWriteCode(min: 30, max: 30).json["id"] as? String)
        let queued = try #require(try await server.client.submitWriteCode(min: 30, max: 30).json["id"] as? String)
        #expect(try await eventually { try await server.client.get("/v1/jobs/\(running)").json["status"] as? String == "running" })

        let cancelQueued = try await server.client.post("/v1/jobs/\(queued)/cancel")
        #expect(cancelQueued.status == 200)
        #expect(cancelQueued.json["status"] as? String == "cancelled")
        #expect(cancelQueued.json["started_at"] is NSNull)

        let started = ContinuousClock.now
        let cancelRunning = try await server.client.post("/v1/jobs/\(running)/cancel")
        #expect(cancelRunning.status == 200)
        #expect(cancelRunning.json["status"] as? String == "cancelled")
        // Stopping takes milliseconds (the job would sleep 30 s); the bound leaves room for the
        // HTTP round trip on a loaded two-core machine running tests in parallel.
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect((cancelRunning.json["error"] as? [String: Any])?["code"] as? String == "cancelled")

        let again = try await server.client.post("/v1/jobs/\(running)/cancel")
        #expect(again.status == 409)
        #expect(again.header("Content-Type") == "application/problem+json")
        #expect(try await server.client.get("/v1/jobs/\(running)").json["status"] as? String == "cancelled")
    }

    @Test("a burst of jobs never has more than --workers running at once")
    func burstConcurrency() async throws {
        let workers = 3
        let server = try TestServer { $0.executor.workers = workers }
        defer { server.stop() }
        // One batch, so that all 18 are queued at once whatever a commit costs on this store.
        let jobs = (0..<18).map { #"{"kind":"write_code","input":{"name":"b\#($0)","min_seconds":0.1,"max_seconds":0.1}}"# }
        let batch = try await server.client.post("/v1/jobs/batch", #"{"jobs":["# + jobs.joined(separator: ",") + "]}")
        let ids = ((batch.json["jobs"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        #expect(ids.count == 18)
        var intervals: [(start: String, end: String)] = []
        for id in ids {
            let job = try await server.client.get("/v1/jobs/\(id)?wait=30").json
            #expect(job["status"] as? String == "succeeded")
            intervals.append((try #require(job["started_at"] as? String), try #require(job["finished_at"] as? String)))
        }
        // RFC 3339 with fixed-width microseconds sorts as text; an end and a start at the same
        // instant do not overlap, so ends are processed first.
        let events = intervals.flatMap { [($0.start, 1), ($0.end, -1)] }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        var current = 0, peak = 0
        for (_, delta) in events { current += delta; peak = max(peak, current) }
        #expect(peak == workers)
    }
}
