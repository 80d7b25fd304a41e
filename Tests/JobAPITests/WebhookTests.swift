import Foundation
import JobAPI
import JobpoolApp
import OutboundHTTP
import Synchronization
import Testing
import Webhooks

/// Webhooks end to end: real deliveries to sinks on 127.0.0.2 (opened with --allow-cidr).
@Suite("Webhooks")
struct WebhookTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    private func makeServer(schedule: String = "100ms,100ms", timeout: Duration = .seconds(2),
                            configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> TestServer {
        try TestServer {
            $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.2/32")!])
            $0.webhooks.retrySchedule = RetrySchedule(schedule)!
            $0.webhooks.timeout = timeout
            configure(&$0)
        }
    }

    /// A sink that answers each request with the next reply in `script` (the last one repeats).
    private func makeSink(_ script: [FetchTargetServer.Reply] = [.page(status: 200, body: [])],
                          delay: Duration = .zero) throws -> FetchTargetServer {
        let counter = Mutex(0)
        return try FetchTargetServer { _ in
            let index = counter.withLock { count in defer { count += 1 }; return count }
            return (delay, script[min(index, script.count - 1)])
        }
    }

    private func submit(_ server: TestServer, sink: FetchTargetServer, input: String = #"{"name":"alex","max_seconds":0}"#,
                        kind: String = "write_code", secret: String? = WebhookTests.secret) async throws -> TestHTTPClient.Response {
        let secretJSON = secret.map { #","secret":"\#($0)""# } ?? ""
        return try await server.client.post(
            "/v1/jobs", #"{"kind":"\#(kind)","input":\#(input),"webhook":{"url":"\#(sink.url)/hook"\#(secretJSON)}}"#)
    }

    @Test("retention forgets a purged job's delivery records along with the job")
    func retentionPrunesDeliveryRecords() async throws {
        let sink = try makeSink()
        defer { sink.stop() }
        let server = try makeServer {
            $0.retention = .milliseconds(300)
            $0.retentionSweepInterval = .milliseconds(100)
        }
        defer { server.stop() }
        let id = try #require(try await submit(server, sink: sink).json["id"] as? String)
        // Delivered, then purged 300 ms later: the job may be gone before a poll sees it
        // delivered, so wait on the sink instead.
        #expect(try await eventually { sink.requestCount == 1 })
        #expect(try await eventually { try await server.client.get("/v1/jobs/\(id)").status == 404 })
        #expect(try await eventually { server.server.webhookRecordCount == 0 }, "the purged job's delivery record is still held")
    }

    private func json(_ bytes: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    @Test("the seed's callback scenario: ten write_code jobs, ten signed events with name and lines")
    func seedCallbacks() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let sink = try makeSink()
        defer { sink.stop() }
        var ids: Set<String> = []
        for index in 0..<10 {
            let response = try await submit(server, sink: sink, input: #"{"name":"dev\#(index)","min_seconds":0,"max_seconds":0.2}"#)
            #expect(response.status == 202)
            ids.insert(try #require(response.json["id"] as? String))
        }
        #expect(try await eventually { sink.requestCount == 10 })
        var webhookIDs: Set<String> = []
        for request in sink.received {
            #expect(request.method == "POST")
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.headers["user-agent"]?.hasPrefix("jobpool/") == true)
            #expect(try verify(request, secret: Self.secret))
            let timestamp = Int(request.headers["webhook-timestamp"] ?? "") ?? 0
            #expect(abs(timestamp - Int(Date().timeIntervalSince1970)) < 60)
            webhookIDs.insert(request.headers["webhook-id"] ?? "")
            let event = json(request.body)
            #expect(event["type"] as? String == "job.succeeded")
            #expect(event["timestamp"] is String)
            let data = try #require(event["data"] as? [String: Any])
            #expect(ids.contains(data["id"] as? String ?? ""))
            #expect(data["status"] as? String == "succeeded")
            let result = try #require(data["result"] as? [String: Any])
            #expect((result["name"] as? String)?.hasPrefix("dev") == true)
            #expect((5...10).contains(result["lines"] as? Int ?? 0))
        }
        #expect(webhookIDs.count == 10)
        for id in ids {
            #expect(try await eventually {
                (try await server.client.get("/v1/jobs/\(id)").json["webhook"] as? [String: Any])?["state"] as? String == "delivered"
            })
        }
    }

    @Test("500, 500, then 200: three attempts with one webhook-id and one body, then delivered")
    func retriesUntilDelivered() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let sink = try makeSink([.page(status: 500, body: []), .page(status: 500, body: []), .page(status: 200, body: [])])
        defer { sink.stop() }
        let id = try #require(try await submit(server, sink: sink).json["id"] as? String)
        #expect(try await eventually { sink.requestCount == 3 })
        let requests = sink.received
        #expect(Set(requests.map { $0.headers["webhook-id"] ?? "" }).count == 1)
        #expect(Set(requests.map(\.body)).count == 1, "the event body is frozen")
        for request in requests { #expect(try verify(request, secret: Self.secret)) }
        let report = try await waitForState(server, id, "delivered")
        let deliveries = try #require(report["deliveries"] as? [[String: Any]])
        #expect(deliveries.map { $0["status"] as? Int } == [500, 500, 200])
        #expect(deliveries.filter { ($0["status"] as? Int) == 200 }.count == 1)
        #expect(deliveries[0]["next_attempt_at"] is String)
        #expect(deliveries[2]["next_attempt_at"] is NSNull)
        #expect(report["webhook_id"] as? String == requests[0].headers["webhook-id"])
        let job = try await server.client.get("/v1/jobs/\(id)").json
        #expect((job["webhook"] as? [String: Any])?["attempts"] as? Int == 3)
        #expect(try await eventually { server.server.webhooksIdle }, "nothing left to send after success")
        #expect(sink.requestCount == 3, "nothing after success")
    }

    @Test("410 Gone stops at once: one attempt, failed")
    func gone() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let sink = try makeSink([.page(status: 410, body: [])])
        defer { sink.stop() }
        let id = try #require(try await submit(server, sink: sink).json["id"] as? String)
        let report = try await waitForState(server, id, "failed")
        #expect((report["deliveries"] as? [Any])?.count == 1)
        #expect(try await eventually { server.server.webhooksIdle }, "nothing left to send after 410")
        #expect(sink.requestCount == 1)
    }

    @Test("a sink that hangs: each attempt times out, the schedule is followed, then failed")
    func hangingSink() async throws {
        let server = try makeServer(timeout: .milliseconds(500))
        defer { server.stop() }
        let sink = try makeSink([.hang])
        defer { sink.stop() }
        let id = try #require(try await submit(server, sink: sink).json["id"] as? String)
        let report = try await waitForState(server, id, "failed")
        let deliveries = try #require(report["deliveries"] as? [[String: Any]])
        #expect(deliveries.count == 3)
        #expect(deliveries.allSatisfy { ($0["error"] as? [String: Any])?["code"] as? String == "timeout" })
        #expect(deliveries.allSatisfy { $0["status"] is NSNull })
        #expect(deliveries.prefix(2).allSatisfy { $0["next_attempt_at"] is String })
    }

    @Test("a sink that is down: connection errors, then failed")
    func downSink() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let sink = try makeSink()
        sink.stop()
        let id = try #require(try await submit(server, sink: sink).json["id"] as? String)
        let report = try await waitForState(server, id, "failed")
        let deliveries = try #require(report["deliveries"] as? [[String: Any]])
        #expect(deliveries.count == 3)
        #expect(deliveries.allSatisfy { ($0["error"] as? [String: Any])?["code"] as? String == "connect" })
    }

    @Test("a redirect is not followed and counts as a failure")
    func redirectNotFollowed() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let elsewhere = try makeSink()
        defer { elsewhere.stop() }
        let sink = try makeSink([.page(status: 307, headers: ["Location": "\(elsewhere.url)/hook"], body: [])])
        defer { sink.stop() }
        let id = try #require(try await submit(server, sink: sink).json["id"] as? String)
        let report = try await waitForState(server, id, "failed")
        let deliveries = try #require(report["deliveries"] as? [[String: Any]])
        #expect(deliveries.allSatisfy { $0["status"] as? Int == 307 })
        #expect(elsewhere.requestCount == 0)
    }

    @Test("failed and cancelled jobs deliver their events too")
    func failedAndCancelled() async throws {
        let server = try makeServer { $0.executor.workers = 1 }
        defer { server.stop() }
        let sink = try makeSink()
        defer { sink.stop() }
        _ = try await submit(server, sink: sink, input: #"{"url":"http://127.0.0.1:9/"}"#, kind: "fetch_url")
        let blocker = try #require(try await server.client.submitWriteCode(min: 30, max: 30).json["id"] as? String)
        let queued = try #require(try await submit(server, sink: sink, input: #"{"name":"x","min_seconds":30,"max_seconds":30}"#).json["id"] as? String)
        #expect(try await server.client.post("/v1/jobs/\(queued)/cancel").status == 200)
        #expect(try await eventually { sink.requestCount == 2 })
        let types = Set(sink.received.map { json($0.body)["type"] as? String ?? "" })
        #expect(types == ["job.failed", "job.cancelled"])
        _ = try await server.client.post("/v1/jobs/\(blocker)/cancel")
    }

    @Test("a slow receiver (10 s) does not delay other jobs")
    func slowSink() async throws {
        let server = try makeServer(timeout: .seconds(15))
        defer { server.stop() }
        let sink = try makeSink(delay: .seconds(10))
        defer { sink.stop() }
        for _ in 0..<3 { _ = try await submit(server, sink: sink) }
        #expect(try await eventually { sink.requestCount >= 1 })
        let started = ContinuousClock.now
        for _ in 0..<5 {
            let response = try await server.client.submitWriteCode(min: 0, max: 0, headers: ["Prefer": "wait=10"])
            #expect(response.status == 200)
        }
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    @Test("per-host limit: a hanging receiver holds at most its share, and others are served at once")
    func perHostLimit() async throws {
        // A long attempt timeout: no attempt may end (and be retried) while the test runs,
        // or the sink would count the abandoned connections it is still holding.
        let server = try makeServer(timeout: .seconds(60)) {
            $0.webhooks.workers = 4
            $0.webhooks.maxPerHost = 2
        }
        defer { server.stop() }
        let dead = try makeSink([.hang])
        defer { dead.stop() }
        let healthy = try makeSink()
        defer { healthy.stop() }
        for _ in 0..<6 { _ = try await submit(server, sink: dead) }
        #expect(try await eventually { dead.requestCount >= 2 })
        for _ in 0..<4 { _ = try await submit(server, sink: healthy) }
        let started = ContinuousClock.now
        #expect(try await eventually(timeout: .seconds(5)) { healthy.requestCount == 4 })
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(dead.peakConcurrency == 2, "never more than --webhook-max-per-host at one destination")
    }

    @Test("redeliver sends the same event again, with the same webhook-id and body")
    func redeliver() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let sink = try makeSink()
        defer { sink.stop() }
        let id = try #require(try await submit(server, sink: sink).json["id"] as? String)
        _ = try await waitForState(server, id, "delivered")
        // A settled event leaves the deliverer's memory; its attempts and the redelivery come
        // from the store.
        #expect(try await eventually { server.server.webhookRecordCount == 0 })
        #expect((try await server.client.get("/v1/jobs/\(id)/deliveries").json["deliveries"] as? [Any])?.count == 1)
        let response = try await server.client.post("/v1/jobs/\(id)/deliveries/redeliver")
        #expect(response.status == 202)
        #expect(try await eventually { sink.requestCount == 2 })
        let requests = sink.received
        #expect(requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"])
        #expect(requests[0].body == requests[1].body)
        let report = try await waitForState(server, id, "delivered")
        #expect((report["deliveries"] as? [Any])?.count == 2)
        let plain = try #require(try await server.client.submitWriteCode().json["id"] as? String)
        #expect(try await server.client.post("/v1/jobs/\(plain)/deliveries/redeliver").status == 409)
        #expect(try await server.client.get("/v1/jobs/\(plain)/deliveries").status == 409)
    }

    @Test("200 jobs with webhooks finish at once; every webhook arrives exactly once")
    func manyAtOnce() async throws {
        let server = try makeServer { $0.executor.workers = 8 }
        defer { server.stop() }
        let sink = try makeSink()
        defer { sink.stop() }
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<200 { group.addTask { try await submit(server, sink: sink).status } }
            for try await status in group { #expect(status == 202) }
        }
        #expect(try await eventually(timeout: .seconds(30)) { sink.requestCount >= 200 && server.server.webhooksIdle })
        let ids = sink.received.map { $0.headers["webhook-id"] ?? "" }
        #expect(ids.count == 200)
        #expect(Set(ids).count == 200)
    }

    @Test("without a secret the server makes one, shows it once, and signs with it")
    func generatedSecret() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let sink = try makeSink()
        defer { sink.stop() }
        let response = try await submit(server, sink: sink, secret: nil)
        let webhook = try #require(response.json["webhook"] as? [String: Any])
        let secret = try #require(webhook["secret"] as? String)
        #expect(secret.hasPrefix("whsec_"))
        let id = try #require(response.json["id"] as? String)
        #expect(try await eventually { sink.requestCount == 1 })
        #expect(try verify(sink.received[0], secret: secret))
        let later = try await server.client.get("/v1/jobs/\(id)")
        #expect(!later.text.contains(secret))
        #expect(!(try await server.client.get("/v1/jobs").text.contains(secret)))
        #expect(!(try await server.client.get("/v1/jobs/\(id)/deliveries").text.contains(secret)))
    }

    @Test("bad webhooks are refused at submit with a 422 naming the field", arguments: [
        (#"{"url":"ftp://example.com/hook"}"#, "/webhook/url"),
        (#"{"url":"not a url"}"#, "/webhook/url"),
        (#"{"url":"http://127.0.0.1:8080/hook"}"#, "/webhook/url"),
        (#"{"url":"http://169.254.169.254/latest"}"#, "/webhook/url"),
        (#"{"url":"https://example.com/hook","secret":"plain"}"#, "/webhook/secret"),
        (#"{"url":"https://example.com/hook","secret":"whsec_c2hvcnQ="}"#, "/webhook/secret"),
        (#"{"url":"https://example.com/hook","events":["x"]}"#, "/webhook/events"),
        (#""https://example.com/hook""#, "/webhook"),
    ])
    func invalidWebhook(webhook: String, pointer: String) async throws {
        let server = try makeServer()
        defer { server.stop() }
        let response = try await server.client.post(
            "/v1/jobs", #"{"kind":"write_code","input":{"name":"a"},"webhook":\#(webhook)}"#)
        #expect(response.status == 422)
        #expect((response.json["errors"] as? [[String: Any]])?.first?["pointer"] as? String == pointer)
    }

    /// Waits until the job's webhook reaches `state`; returns its deliveries report.
    private func waitForState(_ server: TestServer, _ id: String, _ state: String) async throws -> [String: any Sendable] {
        var report: [String: any Sendable] = [:]
        let reached = try await eventually(timeout: .seconds(20)) {
            report = try await server.client.get("/v1/jobs/\(id)/deliveries").json
            return report["state"] as? String == state
        }
        #expect(reached, "webhook of \(id) never reached \(state): \(report)")
        return report
    }
}
