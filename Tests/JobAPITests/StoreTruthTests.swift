import Foundation
@testable import JobAPI
import JobCore
import Testing

/// The store is the source of truth: memory holds live jobs and a bounded cache, and a job that
/// has left the cache is answered from the store, the same as before.
@Suite("The store answers for finished jobs")
struct StoreTruthTests {
    private static let quickJob = #"{"kind":"write_code","input":{"name":"quick","max_seconds":0}}"#

    @Test("a finished job that is not in memory is served from the store with the same bytes and ETag",
          arguments: StoreKind.available)
    func servedFromStore(store: StoreKind) async throws {
        // A cache of 0 bytes keeps nothing: every read of a finished job goes to the store.
        let server = try TestServer { store.apply(to: &$0); $0.executor.finishedCacheBytes = 0 }
        defer { server.stop() }
        let id = try #require(try await server.client.post("/v1/jobs", Self.quickJob, headers: ["Prefer": "wait=20"]).json["id"] as? String)
        #expect(try await eventually { server.server.executor.cachedJob(withID: JobID(id)!) == nil })
        let first = try await server.client.get("/v1/jobs/\(id)")
        let second = try await server.client.get("/v1/jobs/\(id)")
        #expect(first.status == 200)
        #expect(first.json["status"] as? String == "succeeded")
        #expect(first.body == second.body)
        let etag = try #require(first.header("ETag"))
        #expect(second.header("ETag") == etag)
        #expect(try await server.client.get("/v1/jobs/\(id)", headers: ["If-None-Match": etag]).status == 304)
        #expect(server.server.executor.cachedJob(withID: JobID(id)!) == nil)
        // The same job cached in memory shows the same bytes: the cache and the store agree.
        let cached = try TestServer { store.apply(to: &$0) }
        defer { cached.stop() }
        let other = try #require(try await cached.client.post("/v1/jobs", Self.quickJob, headers: ["Prefer": "wait=20"]).json["id"] as? String)
        // A durable store's job is cached when it finishes; the in-memory store holds the job
        // object itself, and the cache takes it on its first read.
        #expect(try await cached.client.get("/v1/jobs/\(other)").status == 200)
        #expect(try await eventually { cached.server.executor.cachedJob(withID: JobID(other)!)?.isFinished == true })
        let fromCache = try await cached.client.get("/v1/jobs/\(other)")
        let record = try JSONSerialization.jsonObject(with: fromCache.body) as? NSDictionary
        #expect(Set((record?.allKeys as? [String]) ?? []) == Set(first.json.keys))
    }

    @Test("a list spans cached and uncached jobs with no gap and no repeat", arguments: StoreKind.available)
    func listAcrossCache(store: StoreKind) async throws {
        // Room for a couple of finished jobs only; the rest are read from the store.
        let server = try TestServer { store.apply(to: &$0); $0.executor.finishedCacheBytes = 10_000 }
        defer { server.stop() }
        var submitted: [String] = []
        for _ in 0..<30 {
            submitted.append(try #require(try await server.client.post("/v1/jobs", Self.quickJob).json["id"] as? String))
        }
        #expect(try await eventually {
            try await server.client.get("/v1/jobs?status=succeeded&limit=100").json["jobs"].map { ($0 as? [Any])?.count } == 30
        })
        var listed: [String] = []
        var cursor: String?
        repeat {
            let page = try await server.client.get("/v1/jobs?limit=7" + (cursor.map { "&cursor=\($0)" } ?? "")).json
            listed += ((page["jobs"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
            cursor = page["next_cursor"] as? String
        } while cursor != nil
        #expect(listed == submitted.reversed())
    }
}

/// `--store memory` is bounded: the oldest finished jobs are evicted past --memory-max-jobs, and
/// live jobs never are.
@Suite("The in-memory store's bound")
struct MemoryBoundTests {
    @Test("past --memory-max-jobs the oldest finished jobs are evicted and counted")
    func evictsOldestFinished() async throws {
        let server = try TestServer { $0.store = .memory; $0.memoryMaxJobs = 5 }
        defer { server.stop() }
        var ids: [String] = []
        for _ in 0..<8 {
            let reply = try await server.client.post("/v1/jobs", #"{"kind":"write_code","input":{"name":"b","max_seconds":0}}"#,
                                                     headers: ["Prefer": "wait=20"])
            #expect(reply.status == 200)
            ids.append(try #require(reply.json["id"] as? String))
        }
        // Submitting the 6th, 7th and 8th each evicted the oldest finished job.
        for id in ids.prefix(3) { #expect(try await server.client.get("/v1/jobs/\(id)").status == 404) }
        for id in ids.suffix(5) { #expect(try await server.client.get("/v1/jobs/\(id)").status == 200) }
        let stats = try await server.client.get("/v1/stats").json
        #expect((stats["by_state"] as? [String: Any])?["succeeded"] as? Int == 5, "\(stats)")
        let metrics = try await server.client.get("/metrics").text
        #expect(metrics.contains("jobpool_memory_store_evictions_total 3"), "\(metrics.split(separator: "\n").filter { $0.contains("evict") })")
    }

    @Test("when every job held is live, a submission gets 503 with a message and nothing is lost")
    func refusesWhenAllLive() async throws {
        let server = try TestServer {
            $0.store = .memory
            $0.memoryMaxJobs = 3
            $0.executor.workers = 1
        }
        defer { server.stop() }
        var live: [String] = []
        for _ in 0..<3 {
            live.append(try #require(try await server.client.post("/v1/jobs", #"{"kind":"write_code","delay_seconds":60,"input":{"name":"l"}}"#).json["id"] as? String))
        }
        let refused = try await server.client.post("/v1/jobs", #"{"kind":"write_code","input":{"name":"x"}}"#)
        #expect(refused.status == 503)
        #expect(refused.header("Content-Type") == "application/problem+json")
        #expect((refused.json["detail"] as? String)?.contains("--memory-max-jobs") == true, "\(refused.text)")
        for id in live { #expect(try await server.client.get("/v1/jobs/\(id)").json["status"] as? String == "scheduled") }
        let listed = (try await server.client.get("/v1/jobs").json["jobs"] as? [Any])?.count
        #expect(listed == 3)
    }
}

/// Retention deletes through the store's index, in batches, on its own thread.
@Suite("Retention in batches")
struct RetentionBatchTests {
    @Test("retention deletes old finished jobs in batches while submissions go on", arguments: StoreKind.available)
    func batchesWhileSubmitting(store: StoreKind) async throws {
        let server = try TestServer {
            store.apply(to: &$0)
            $0.retention = .seconds(1)
            $0.retentionSweepInterval = .milliseconds(200)
            $0.executor.maxQueued = 10_000
        }
        defer { server.stop() }
        let job = #"{"kind":"write_code","input":{"name":"old","max_seconds":0}}"#
        let batch = #"{"jobs":["# + Array(repeating: job, count: 400).joined(separator: ",") + "]}"
        var old: [String] = []
        for _ in 0..<3 {
            let reply = try await server.client.post("/v1/jobs/batch", batch)
            #expect(reply.status == 202)
            old += ((reply.json["jobs"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        }
        #expect(old.count == 1200)
        let oldest = try #require(old.first), newestOld = try #require(old.last)
        // Submissions keep being answered while retention deletes the 1,200 older jobs.
        var submitted = 0
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            #expect(try await server.client.post("/v1/jobs", job).status == 202)
            submitted += 1
            if try await server.client.get("/v1/jobs/\(newestOld)").status == 404, submitted >= 20 { break }
        }
        #expect(try await server.client.get("/v1/jobs/\(oldest)").status == 404)
        #expect(try await server.client.get("/v1/jobs/\(newestOld)").status == 404)
        let metrics = try await server.client.get("/metrics").text
        let batches = metrics.split(separator: "\n").first { $0.hasPrefix("jobpool_retention_batches_total ") }
            .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        // 1,200 jobs at most 500 a batch: at least three batches.
        #expect(batches >= 3, "\(batches) batches")
    }
}
