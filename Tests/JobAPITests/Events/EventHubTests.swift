import Foundation
import JobAPI
import OutboundHTTP
import Synchronization
import Testing
import Webhooks

@Suite("GET /v1/events: every job change, live")
struct EventHubTests {
    private static let quickJob = #"{"kind":"write_code","input":{"name":"ev","max_seconds":0}}"#

    private func submitQuick(_ server: TestServer, count: Int, apiKey: String? = nil) async throws -> [String] {
        var ids: [String] = []
        for _ in 0..<count {
            let reply = try await server.client.post("/v1/jobs", Self.quickJob, headers: apiKey.map { ["Authorization": "Bearer \($0)"] } ?? [:])
            ids.append(try #require(reply.json["id"] as? String))
        }
        return ids
    }

    private func finished(_ ids: [String]) -> ([SSEConnection.Event]) -> Bool {
        { events in Set(ids).isSubset(of: Set(events.filter { $0.name == "job.succeeded" }.compactMap(\.jobID))) }
    }

    @Test("each job's created, started and succeeded in order with consecutive IDs; kind and status filters")
    func everyChangeAndFilters() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let all = try SSEConnection(port: server.port)
        let succeeded = try SSEConnection(port: server.port, query: "?status=succeeded,failed")
        let fetches = try SSEConnection(port: server.port, query: "?kind=fetch_url")
        for stream in [all, succeeded, fetches] { await stream.read { $0.contains { $0.name == "ready" } } }
        #expect(all.status == 200)
        #expect(all.text.lowercased().contains("content-type: text/event-stream"))

        let ids = try await submitQuick(server, count: 3)
        let events = await all.read(until: finished(ids))
        let jobEvents = all.jobEvents
        for id in ids {
            #expect(jobEvents.filter { $0.jobID == id }.map(\.name) == ["job.created", "job.started", "job.succeeded"])
        }
        // One server, nothing else running: the IDs are consecutive after the ready event's.
        let numbers = events.compactMap(\.id)
        #expect(numbers == Array(numbers[0]..<(numbers[0] + numbers.count)))
        let summary = try #require(jobEvents.last?.data["job"] as? [String: Any])
        #expect(summary["kind"] as? String == "write_code")
        #expect(summary["status"] as? String == "succeeded")
        #expect(jobEvents.last?.data["input"] == nil) // a summary, not the job

        await succeeded.read(until: finished(ids))
        #expect(succeeded.jobEvents.map(\.name) == ["job.succeeded", "job.succeeded", "job.succeeded"])
        // The fetch_url stream got nothing of these write_code jobs (its ready event only), even
        // after the unfiltered stream had them all.
        #expect(await fetches.read(timeout: .milliseconds(500)) { !$0.filter { $0.name != "ready" }.isEmpty }.count == 1)

        #expect(try await server.client.get("/v1/events?status=nope").status == 400)
        #expect(try await server.client.get("/v1/events?kind=no_such_kind").status == 400)
        #expect(try await server.client.get("/v1/events?staus=failed").status == 400)
        #expect(try await server.client.get("/v1/events", headers: ["Last-Event-ID": "abc"]).status == 400)
        #expect(try await server.client.send("HEAD", "/v1/events").status == 200)
    }

    @Test("a reconnect with Last-Event-ID gets exactly what it missed, once")
    func resume() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let first = try SSEConnection(port: server.port)
        let firstIDs = try await submitQuick(server, count: 1)
        await first.read(until: finished(firstIDs))
        let lastSeen = try #require(first.events.compactMap(\.id).max())
        first.socket.disconnect()

        let missedIDs = try await submitQuick(server, count: 2) // while no stream is open
        let second = try SSEConnection(port: server.port, lastEventID: lastSeen)
        await second.read(until: finished(missedIDs))
        #expect(Set(second.jobEvents.compactMap(\.jobID)) == Set(missedIDs))
        #expect(second.jobEvents.count == 6)
        #expect(second.jobEvents.allSatisfy { ($0.id ?? 0) > lastSeen })
        #expect(!second.events.contains { $0.name == "reset" })
    }

    @Test("a Last-Event-ID older than the replay window, or unknown, gets one reset, then live events")
    func resetPastTheWindow() async throws {
        let server = try TestServer { $0.api.eventReplayWindow = 5 }
        defer { server.stop() }
        let watcher = try SSEConnection(port: server.port)
        let ready = await watcher.read { $0.contains { $0.name == "ready" } }
        let start = try #require(ready.first?.id)
        let ids = try await submitQuick(server, count: 3) // 9 changes: more than the window holds
        // More than 5 changes between two flushes is a reset for the open streams too.
        await watcher.read { finished(ids)($0) || $0.contains { $0.name == "reset" } }

        var late = try SSEConnection(port: server.port)
        for stale in [start, start + 1_000_000] {
            late = try SSEConnection(port: server.port, lastEventID: stale)
            await late.read { $0.contains { $0.name == "ready" } }
            #expect(late.events.map(\.name) == ["reset", "ready"])
            let reason = late.events.first?.data["reason"] as? String
            #expect(reason?.contains(stale == start ? "older than the replay window" : "not an event this server has sent") == true)
            // The stream stays open after the reset and carries on live.
            let later = try await submitQuick(server, count: 1)
            await late.read(until: finished(later))
            // The earlier jobs' last changes may still come live after the reset (on PostgreSQL
            // the log is read back after each commit, and the watcher stopped at the reset).
            #expect(late.jobEvents.filter { $0.jobID == later[0] }.map(\.name) == ["job.created", "job.started", "job.succeeded"])
            #expect(late.jobEvents.allSatisfy { $0.jobID.map { ($0 == later[0]) || ids.contains($0) } ?? false }, "\(late.jobEvents.map(\.name))")
        }
        // Inside the window, no reset: the last 5 changes are kept.
        let newest = try #require(late.events.compactMap(\.id).max())
        let recent = try SSEConnection(port: server.port, lastEventID: newest - 4)
        await recent.read { $0.contains { $0.name == "ready" } }
        #expect(!recent.events.contains { $0.name == "reset" })
        #expect(recent.jobEvents.count == 4)
    }

    @Test("with API keys: a key is required, and each tenant sees only its own jobs' events")
    func tenants() async throws {
        let alice = "alice-key-0123456789", bob = "bob-key-0123456789"
        let server = try TestServer { $0.apiKeys = [alice, bob] }
        defer { server.stop() }
        #expect(try await server.client.get("/v1/events").status == 401)
        #expect(try await server.client.get("/v1/events", headers: ["Authorization": "Bearer wrong"]).status == 401)
        let aliceStream = try SSEConnection(port: server.port, apiKey: alice)
        let bobStream = try SSEConnection(port: server.port, apiKey: bob)
        for stream in [aliceStream, bobStream] { await stream.read { $0.contains { $0.name == "ready" } } }
        let aliceJobs = try await submitQuick(server, count: 2, apiKey: alice)
        let bobJobs = try await submitQuick(server, count: 2, apiKey: bob)
        await aliceStream.read(until: finished(aliceJobs))
        await bobStream.read(until: finished(bobJobs))
        #expect(Set(aliceStream.jobEvents.compactMap(\.jobID)) == Set(aliceJobs))
        #expect(Set(bobStream.jobEvents.compactMap(\.jobID)) == Set(bobJobs))
    }

    @Test("streams share the per-job streams' cap: one more is a 503, and a freed place is taken again")
    func cap() async throws {
        let server = try TestServer { $0.api.maxWaiters = 2 }
        defer { server.stop() }
        let waiting = try await server.client.post("/v1/jobs", #"{"kind":"write_code","delay_seconds":3600,"input":{"name":"later"}}"#)
        let jobStream = try RawSocket(port: server.port)
        jobStream.write("GET \(try #require(waiting.header("Location")))/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(await onThread { jobStream.read(until: "event: scheduled") }.contains("event: scheduled"))
        let global = try SSEConnection(port: server.port)
        await global.read { $0.contains { $0.name == "ready" } }
        let refused = try await server.client.get("/v1/events")
        #expect(refused.status == 503)
        #expect(refused.json["type"] as? String == "urn:jobpool:problem:too-many-waiters")
        global.socket.disconnect()
        // libevent notices the closed client on its next write: the heartbeat or an event.
        #expect(try await eventually {
            _ = try await submitQuick(server, count: 1)
            let again = try SSEConnection(port: server.port)
            await again.read(timeout: .seconds(1)) { $0.contains { $0.name == "ready" } }
            return again.status == 200
        })
    }

    @Test("a client that stops reading is sent a reset once it is over the unsent-bytes limit, and the stream ends")
    func slowStreamReset() async throws {
        // The memory store, whatever store the suite runs on: the stream's pace is the point here.
        let server = try TestServer { $0.store = .memory; $0.api.eventStreamMaxUnsentBytes = 64 * 1024 }
        defer { server.stop() }
        // A 4 KB receive buffer, and no reads while jobs run: the kernel's buffers fill soon,
        // and then the server's output buffer grows past the limit.
        let stalled = try SSEConnection(port: server.port, receiveBuffer: 4096)
        await stalled.read { $0.contains { $0.name == "ready" } }
        let batch = "{\"jobs\":[" + Array(repeating: Self.quickJob, count: 1000).joined(separator: ",") + "]}"
        // No reads until the end: a read would drain what the server sent. What the client does
        // not read waits in its 4 KB receive buffer and the server's kernel send buffer, which
        // loopback autotunes up to tcp_wmem's maximum (4 MB here); only past both does the
        // server's own output buffer grow towards the limit. 16 batches are 48,000 events, about
        // 11 MB (measured here: the reset came after 12,000 events, 2.7 MB); 8 batches with a
        // short read after each were not always past it (a CI run got all 24,000 events).
        let submitted = 16_000
        for _ in 0..<(submitted / 1000) {
            #expect(try await server.client.post("/v1/jobs/batch", batch).status == 202)
        }
        #expect(try await eventually(timeout: .seconds(60)) {
            (try await server.client.get("/v1/stats").json["by_state"] as? [String: Any])?["succeeded"] as? Int == submitted
        })
        // Now read everything: the events it got, then the reset, then the end of the stream.
        await stalled.read(timeout: .seconds(20)) { _ in stalled.isEnded }
        #expect(stalled.events.last?.name == "reset")
        #expect((stalled.events.last?.data["reason"] as? String)?.contains("behind") == true)
        #expect(stalled.isEnded)
        // What came before the reset had no gap (the reset skips the rest).
        let ids = stalled.events.dropLast().compactMap(\.id)
        #expect(ids == Array(ids[0]..<(ids[0] + ids.count)))
        #expect(ids.count < submitted * 3)
    }

    @Test("a quiet stream gets heartbeats")
    func heartbeats() async throws {
        let server = try TestServer { $0.api.eventStreamHeartbeat = .milliseconds(100) }
        defer { server.stop() }
        let stream = try SSEConnection(port: server.port)
        await stream.read { _ in stream.text.contains(": heartbeat") }
        #expect(stream.text.contains(": heartbeat"))
    }

    @Test("webhook delivered and failed are events too, and /v1/stats counts deliveries by state")
    func webhookEvents() async throws {
        let server = try TestServer {
            $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.2/32")!])
            $0.webhooks.retrySchedule = RetrySchedule("100ms")!
        }
        defer { server.stop() }
        let sink = try FetchTargetServer { request in
            (.zero, .page(status: request.path.hasSuffix("/ok") ? 200 : 410, body: []))
        }
        defer { sink.stop() }
        let stream = try SSEConnection(port: server.port)
        await stream.read { $0.contains { $0.name == "ready" } }
        var ids: [String: String] = [:]
        for path in ["ok", "gone"] {
            let reply = try await server.client.post(
                "/v1/jobs", #"{"kind":"write_code","input":{"name":"hook","max_seconds":0},"webhook":{"url":"\#(sink.url)/\#(path)"}}"#)
            ids[path] = try #require(reply.json["id"] as? String)
        }
        await stream.read { events in events.contains { $0.name == "webhook.delivered" } && events.contains { $0.name == "webhook.failed" } }
        #expect(stream.jobEvents.first { $0.name == "webhook.delivered" }?.jobID == ids["ok"])
        #expect(stream.jobEvents.first { $0.name == "webhook.failed" }?.jobID == ids["gone"])
        let hook = (stream.jobEvents.first { $0.name == "webhook.failed" }?.data["job"] as? [String: Any])?["webhook"] as? [String: Any]
        #expect(hook?["state"] as? String == "failed")
        let webhooks = try await server.client.get("/v1/stats").json["webhooks"] as? [String: Any]
        #expect(webhooks?["delivered"] as? Int == 1)
        #expect(webhooks?["failed"] as? Int == 1)
        #expect(webhooks?["pending"] as? Int == 0)
    }
}
