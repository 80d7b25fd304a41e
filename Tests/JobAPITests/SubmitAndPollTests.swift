import Foundation
import Testing

@Suite("Submit, poll and wait")
struct SubmitAndPollTests {
    @Test("POST answers 202 with Location and the job; polling reaches succeeded")
    func submitThenPoll() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let submitted = try await server.client.submitWriteCode(name: "alex", min: 0.05, max: 0.1)
        #expect(submitted.status == 202)
        let id = try #require(submitted.json["id"] as? String)
        #expect(submitted.header("Location") == "/v1/jobs/\(id)")
        #expect(submitted.header("Content-Type") == "application/json")
        let job = submitted.json
        #expect(job["kind"] as? String == "write_code")
        #expect(["queued", "running"].contains(job["status"] as? String))
        for field in ["input", "result", "error", "created_at", "started_at", "finished_at"] {
            #expect(job.keys.contains(field), "missing \(field)")
        }
        #expect((job["created_at"] as? String)?.hasSuffix("Z") == true)

        var finished: [String: any Sendable] = [:]
        let done = try await eventually {
            finished = try await server.client.get("/v1/jobs/\(id)").json
            return finished["status"] as? String == "succeeded"
        }
        #expect(done)
        let result = try #require(finished["result"] as? [String: Any])
        #expect(result["name"] as? String == "alex")
        #expect((5...10).contains(result["lines"] as? Int ?? 0))
        #expect(finished["finished_at"] is String)
    }

    @Test("GET returns an ETag; If-None-Match with it is a 304 until the job changes")
    func etag() async throws {
        let server = try TestServer()
        defer { server.stop() }
        // A long job: it stays running, unchanged, until the test cancels it.
        let id = try #require(try await server.client.submitWriteCode(min: 30, max: 30).json["id"] as? String)
        #expect(try await eventually { try await server.client.get("/v1/jobs/\(id)").json["status"] as? String == "running" })
        let first = try await server.client.get("/v1/jobs/\(id)")
        let etag = try #require(first.header("ETag"))
        let unchanged = try await server.client.get("/v1/jobs/\(id)", headers: ["If-None-Match": etag])
        #expect(unchanged.status == 304)
        #expect(unchanged.body.isEmpty)
        #expect(unchanged.header("ETag") == etag)
        #expect(try await server.client.post("/v1/jobs/\(id)/cancel").status == 200)
        let changed = try await server.client.get("/v1/jobs/\(id)", headers: ["If-None-Match": etag])
        #expect(changed.status == 200, "the job changed, so the old ETag no longer matches")
        let newTag = try #require(changed.header("ETag"))
        #expect(newTag != etag)
        #expect(try await server.client.get("/v1/jobs/\(id)", headers: ["If-None-Match": newTag]).status == 304)
    }

    @Test("Prefer: wait answers 200 with the finished job when it finishes in time")
    func synchronousCall() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.submitWriteCode(min: 0.1, max: 0.2, headers: ["Prefer": "wait=10"])
        #expect(response.status == 200)
        #expect(response.header("Preference-Applied") == "wait=10")
        #expect(response.json["status"] as? String == "succeeded")
        #expect(response.header("Location") != nil)
    }

    @Test("Prefer: wait answers 202 with Retry-After when the job outlasts the wait")
    func synchronousCallTimesOut() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let started = ContinuousClock.now
        let response = try await server.client.submitWriteCode(min: 5, max: 5, headers: ["Prefer": "respond-async, wait=1"])
        #expect(response.status == 202)
        #expect(response.header("Retry-After") != nil)
        #expect(response.header("Preference-Applied") == nil)
        #expect(response.json["status"] as? String == "running")
        #expect(ContinuousClock.now - started >= .milliseconds(900))
    }

    @Test("GET ?wait long-polls until the job finishes, not until the wait ends")
    func longPoll() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let id = try #require(try await server.client.submitWriteCode(min: 0.3, max: 0.3).json["id"] as? String)
        let started = ContinuousClock.now
        let response = try await server.client.get("/v1/jobs/\(id)?wait=20")
        #expect(response.status == 200)
        #expect(response.json["status"] as? String == "succeeded")
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test("many waiting requests hold no threads: 50 parked at once on 2 workers all return")
    func manyWaiters() async throws {
        // A server process of its own, so that its thread count is its own (tests share this one).
        let process = try JobpoolProcess(["serve", "--port", "0", "--store", "memory", "--workers", "2"])
        defer { process.stop() }
        let client = TestHTTPClient(baseURL: "http://127.0.0.1:\(try process.waitUntilListening())")
        // Both workers busy, so that every waiting submission stays parked until they free up.
        let blockers = try await [0, 1].asyncMap { _ in
            try #require(try await client.submitWriteCode(min: 60, max: 60).json["id"] as? String)
        }
        #expect(try await eventually { (try await client.get("/v1/stats").json["workers_busy"] as? Int) == 2 })
        let threadsBefore = try Self.threadCount(of: process.pid)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<50 {
                group.addTask {
                    try await client.submitWriteCode(name: "w\(index)", min: 0, max: 0.01, headers: ["Prefer": "wait=30"]).status
                }
            }
            #expect(try await eventually { (try await client.get("/v1/stats").json["queue_depth"] as? Int) == 50 })
            let threadsParked = try Self.threadCount(of: process.pid)
            #expect(threadsParked <= threadsBefore + 1, "\(threadsParked - threadsBefore) more server threads with 50 requests parked")
            for id in blockers { _ = try await client.post("/v1/jobs/\(id)/cancel") }
            for try await status in group { #expect(status == 200) }
        }
    }

    /// A process's thread count, from /proc.
    private static func threadCount(of pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Threads:") })
        return try #require(Int(line.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces)))
    }
}

extension Array {
    /// `map` with an async transform, one element at a time.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
