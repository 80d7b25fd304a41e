import Foundation
import JobAPI
import JobpoolApp
import JobCore
import OutboundHTTP
import Testing
import Webhooks

/// The durable stores through the real server: restarts (SQLite and PostgreSQL), retention,
/// and refusing bad files (SQLite).
@Suite("Durability")
struct DurabilityTests {
    private func storePath() -> String {
        temporarySQLitePath()
    }

    private func makeServer(path: String, configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> TestServer {
        try makeServer(store: .sqlite(path: path), configure: configure)
    }

    private func makeServer(store: ServerConfiguration.Store, configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> TestServer {
        try TestServer {
            $0.store = store
            $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.2/32")!])
            $0.webhooks.retrySchedule = RetrySchedule("100ms")!
            configure(&$0)
        }
    }

    @Test("a restart keeps scheduled jobs, retries waiting on backoff, options and idempotency keys", arguments: StoreKind.durable)
    func restartKeepsScheduleAndKeys(kind: StoreKind) async throws {
        let store = kind.makeStore()
        let target = try FetchTargetServer { _ in (.zero, .page(status: 503, body: [])) }
        defer { target.stop() }
        let scheduledBody = #"{"kind":"write_code","delay_seconds":1.5,"priority":4,"time_limit_seconds":30,"input":{"name":"later","max_seconds":0}}"#
        let scheduled: String, retrying: String
        do {
            let server = try makeServer(store: store) {
                // A wait of 3 to 6 s: long enough that a poll on a loaded machine sees it.
                $0.executor.retryBackoff = RetryBackoff(base: .seconds(6), cap: .seconds(6))
            }
            defer { server.stop() }
            scheduled = try #require(try await server.client.post("/v1/jobs", scheduledBody, headers: ["Idempotency-Key": "keep-me"]).json["id"] as? String)
            retrying = try #require(try await server.client.post(
                "/v1/jobs", #"{"kind":"fetch_url","max_attempts":2,"input":{"url":"\#(target.url)/x","retry_on_status":[503]}}"#).json["id"] as? String)
            #expect(try await eventually { try await server.client.get("/v1/jobs/\(retrying)").json["status"] as? String == "scheduled" })
        }
        let server = try makeServer(store: store)
        defer { server.stop() }
        let replay = try await server.client.post("/v1/jobs", scheduledBody, headers: ["Idempotency-Key": "keep-me"])
        #expect(replay.json["id"] as? String == scheduled)
        #expect(replay.header("Idempotent-Replayed") == "true")
        let done = try await server.client.get("/v1/jobs/\(scheduled)?wait=20").json
        #expect(done["status"] as? String == "succeeded")
        #expect(done["priority"] as? Int == 4)
        #expect(done["time_limit_seconds"] as? Double == 30)
        let failed = try await server.client.get("/v1/jobs/\(retrying)?wait=20")
        #expect(failed.json["status"] as? String == "failed")
        #expect(failed.json["attempt"] as? Int == 2)
        #expect(failed.errorMember("code") as? String == "http_status")
        #expect(failed.errorMember("status") as? Int == 503)
        #expect(target.requestCount == 2)
    }

    @Test("a restart keeps jobs, results, list order, attempts and webhook deliveries", arguments: StoreKind.durable)
    func restart(kind: StoreKind) async throws {
        let store = kind.makeStore()
        let sink = try FetchTargetServer { _ in (.zero, .page(status: 200, body: [])) }
        defer { sink.stop() }
        var finished: [String: [String: any Sendable]] = [:]
        var listedBefore: [String] = []
        let running: String, queued: String, hooked: String, cursor: String
        do {
            let server = try makeServer(store: store) {
                $0.executor.workers = 1
                $0.shutdownGrace = .milliseconds(200)
            }
            for index in 0..<3 {
                let job = try await server.client.submitWriteCode(name: "done\(index)", headers: ["Prefer": "wait=10"]).json
                finished[job["id"] as? String ?? ""] = job
            }
            hooked = try #require(try await server.client.post(
                "/v1/jobs", #"{"kind":"write_code","input":{"name":"hook","max_seconds":0},"webhook":{"url":"\#(sink.url)/h","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}"#,
                headers: ["Prefer": "wait=10"]).json["id"] as? String)
            #expect(try await eventually { sink.requestCount == 1 })
            #expect(try await eventually {
                try await server.client.get("/v1/jobs/\(hooked)/deliveries").json["state"] as? String == "delivered"
            })
            running = try #require(try await server.client.submitWriteCode(min: 60, max: 60).json["id"] as? String)
            queued = try #require(try await server.client.submitWriteCode(min: 60, max: 60).json["id"] as? String)
            #expect(try await eventually { try await server.client.get("/v1/jobs/\(running)").json["status"] as? String == "running" })
            listedBefore = (try await server.client.get("/v1/jobs?limit=500").json["jobs"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            cursor = try #require(try await server.client.get("/v1/jobs?limit=2").json["next_cursor"] as? String)
            server.stop() // the drain interrupts the running job: it goes back to the queue
        }

        let server = try makeServer(store: store) { $0.executor.workers = 1 }
        defer { server.stop() }
        let listedAfter = (try await server.client.get("/v1/jobs?limit=500").json["jobs"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(listedAfter == listedBefore)
        // A cursor handed out before the restart still continues the same list after it.
        let nextPage = (try await server.client.get("/v1/jobs?limit=500&cursor=\(cursor)").json["jobs"] as? [[String: Any]] ?? [])
            .compactMap { $0["id"] as? String }
        #expect(nextPage == Array(listedBefore.dropFirst(2)))
        for (id, before) in finished {
            let after = try await server.client.get("/v1/jobs/\(id)").json
            #expect(after["status"] as? String == "succeeded")
            #expect((after["result"] as? [String: Any])?["lines"] as? Int == (before["result"] as? [String: Any])?["lines"] as? Int)
            #expect(after["finished_at"] as? String == before["finished_at"] as? String)
        }
        // Running again after the restart; on PostgreSQL once the claimer (not the start) took it.
        #expect(try await eventually { try await server.client.get("/v1/jobs/\(running)").json["status"] as? String == "running" })
        let resumed = try await server.client.get("/v1/jobs/\(running)").json
        #expect(resumed["status"] as? String == "running")
        #expect(resumed["attempt"] as? Int == 1, "a drain does not spend an attempt")
        #expect(try await server.client.get("/v1/jobs/\(queued)").json["status"] as? String == "queued")
        let deliveries = try await server.client.get("/v1/jobs/\(hooked)/deliveries").json
        #expect(deliveries["state"] as? String == "delivered")
        #expect((deliveries["deliveries"] as? [[String: Any]])?.first?["status"] as? Int == 200)
        #expect(sink.requestCount == 1, "a delivered webhook is not sent again")
        for id in [running, queued] { _ = try await server.client.post("/v1/jobs/\(id)/cancel") }
    }

    @Test("retention removes old finished jobs, but not one whose webhook is pending")
    func retention() async throws {
        let hanging = try FetchTargetServer { _ in (.zero, .hang) }
        defer { hanging.stop() }
        let server = try makeServer(path: storePath()) {
            $0.retention = .milliseconds(300)
            $0.retentionSweepInterval = .milliseconds(100)
            $0.webhooks.retrySchedule = RetrySchedule("1h")!
            $0.webhooks.timeout = .seconds(30)
        }
        defer { server.stop() }
        let plain = try #require(try await server.client.submitWriteCode(headers: ["Prefer": "wait=10"]).json["id"] as? String)
        let hooked = try #require(try await server.client.post(
            "/v1/jobs", #"{"kind":"write_code","input":{"name":"x","max_seconds":0},"webhook":{"url":"\#(hanging.url)/h"}}"#,
            headers: ["Prefer": "wait=10"]).json["id"] as? String)
        #expect(try await eventually { try await server.client.get("/v1/jobs/\(plain)").status == 404 })
        #expect(try await server.client.get("/v1/jobs/\(hooked)").status == 200)
    }

    @Test("a damaged store file stops the server from starting, with a message")
    func damagedFile() throws {
        let path = storePath()
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try makeServer(path: path)
        } throws: { error in
            "\(error)".contains("\(path)")
        }
    }
}
