import Foundation
import JobCore
import JobpoolApp
import OutboundHTTP
import Postgres
import PostgresTestSupport
import Synchronization
import Testing
import Webhooks

/// Webhooks when the node that holds an event dies: node A is a real `jobpool serve` process,
/// killed with SIGKILL (no clean stop, so nothing is released); node B runs in this process.
/// Leases are short (heartbeat 1 s, lease 3 s), so B takes over within a few seconds. The
/// webhook sinks listen on 127.0.0.1.
@Suite("Across nodes on PostgreSQL: webhook deliveries survive their node",
       .enabled(if: PostgresTestCluster.isAvailable, Comment(rawValue: PostgresTestCluster.skipMessage)))
struct CrossNodeWebhookTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    /// Node A, a process with workers, on `url`.
    private func startNodeA(_ url: String) throws -> (JobpoolProcess, TestHTTPClient) {
        let process = try JobpoolProcess(["serve", "--port", "0", "--store", url, "--heartbeat-seconds", "1", "--lease-seconds", "3",
                                          "--webhook-retry-schedule", "2s,2s", "--allow-cidr", "127.0.0.1/32", "--shutdown-grace", "0"])
        do {
            let port = try process.waitUntilListening()
            return (process, TestHTTPClient(baseURL: "http://127.0.0.1:\(port)"))
        } catch {
            process.stop()
            throw error
        }
    }

    /// Node B, in this process, with no workers: it only delivers what it claims.
    private func startNodeB(_ url: String, lease: NodeLeaseSettings = NodeLeaseSettings(heartbeat: .seconds(1), lease: .seconds(3))) throws -> TestServer {
        try TestServer {
            $0.store = .postgres(url: url)
            $0.executor.workers = 0
            $0.nodeLease = lease
            $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.1/32")!])
            $0.webhooks.retrySchedule = RetrySchedule("2s,2s")!
        }
    }

    /// Node A in this process, with workers, when it need not be killed.
    private func startNodeAInProcess(_ url: String) throws -> TestServer {
        try TestServer {
            $0.store = .postgres(url: url)
            $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.1/32")!])
        }
    }

    /// Node A in this process, and a job it ran and delivered to `sink`.
    private func deliveredJob(_ url: String, sink: FetchTargetServer) async throws -> (TestServer, String) {
        let a = try startNodeAInProcess(url)
        do {
            let id = try await submit(a.client, sink: sink, input: #"{"name":"alex","max_seconds":0}"#)
            #expect(try await eventually { try await a.client.get("/v1/jobs/\(id)/deliveries").json["state"] as? String == "delivered" })
            return (a, id)
        } catch {
            a.stop()
            throw error
        }
    }

    /// A sink on 127.0.0.1 answering each request with the next status (the last repeats).
    private func makeSink(_ statuses: [Int]) throws -> FetchTargetServer {
        let counter = Mutex(0)
        return try FetchTargetServer(host: "127.0.0.1") { _ in
            let index = counter.withLock { count in defer { count += 1 }; return count }
            return (.zero, .page(status: statuses[min(index, statuses.count - 1)], body: []))
        }
    }

    private func submit(_ client: TestHTTPClient, sink: FetchTargetServer, input: String, maxAttempts: Int = 3) async throws -> String {
        let response = try await client.post("/v1/jobs", """
            {"kind":"write_code","input":\(input),"max_attempts":\(maxAttempts),"webhook":{"url":"\(sink.url)/hook","secret":"\(Self.secret)"}}
            """)
        #expect(response.status == 202)
        return try #require(response.json["id"] as? String)
    }

    private func json(_ bytes: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    @Test("node A dies between two attempts: node B resumes the schedule after A's lease expired, with the same webhook-id and body, signed")
    func resumeAfterNodeDies() async throws {
        let cluster = try PostgresTestCluster.shared()
        let url = try cluster.makeDatabase()
        defer { cluster.dropDatabase(url: url) }
        let sink = try makeSink([500, 200])
        defer { sink.stop() }
        let (a, clientA) = try startNodeA(url)
        defer { a.stop() }
        let b = try startNodeB(url)
        defer { b.stop() }

        let id = try await submit(clientA, sink: sink, input: #"{"name":"alex","max_seconds":0}"#)
        #expect(try await eventually { sink.requestCount >= 1 })
        // A's first attempt (500) is stored before A dies: B's answer comes from the store.
        #expect(try await eventually(timeout: .seconds(5)) {
            (try await b.client.get("/v1/jobs/\(id)/deliveries").json["deliveries"] as? [Any])?.count == 1
        })
        a.send(SIGKILL)
        #expect(a.waitForExit(timeout: .seconds(10)) != nil)
        #expect(sink.requestCount == 1, "A's retry was 2 s away: B did not send while A held the event")

        // Lease 3 s, then B's next sweep (1 s heartbeat) releases it and its claim pass (1 s) takes it.
        #expect(try await eventually(timeout: .seconds(20)) { sink.requestCount >= 2 })
        let requests = sink.received
        #expect(requests.count == 2, "once from each node")
        guard requests.count >= 2 else { return }
        #expect(requests[1].headers["webhook-id"] == requests[0].headers["webhook-id"], "one webhook-id across nodes")
        #expect(requests[1].body == requests[0].body, "the same frozen body")
        for request in requests { #expect(try verifyWebhookSignature(request, secret: Self.secret)) }
        #expect(json(requests[1].body)["type"] as? String == "job.succeeded")
        #expect(try await eventually {
            let deliveries = try await b.client.get("/v1/jobs/\(id)/deliveries").json
            return deliveries["state"] as? String == "delivered" && (deliveries["deliveries"] as? [Any])?.count == 2
        }, "B records its attempt after A's")
    }

    @Test("a job the rescue fails (its node died, out of attempts) fires its webhook from another node: job.failed, node_lost, signed")
    func rescueFailedJobWebhook() async throws {
        let cluster = try PostgresTestCluster.shared()
        let url = try cluster.makeDatabase()
        defer { cluster.dropDatabase(url: url) }
        let sink = try makeSink([200])
        defer { sink.stop() }
        let (a, clientA) = try startNodeA(url)
        defer { a.stop() }
        let b = try startNodeB(url)
        defer { b.stop() }

        let id = try await submit(clientA, sink: sink, input: #"{"name":"alex","min_seconds":60,"max_seconds":60}"#, maxAttempts: 1)
        #expect(try await eventually { try await b.client.get("/v1/jobs/\(id)").json["status"] as? String == "running" })
        a.send(SIGKILL)
        #expect(a.waitForExit(timeout: .seconds(10)) != nil)

        #expect(try await eventually(timeout: .seconds(20)) { sink.requestCount >= 1 })
        let request = try #require(sink.received.first)
        #expect(try verifyWebhookSignature(request, secret: Self.secret))
        #expect(request.headers["webhook-id"]?.hasPrefix("msg_") == true)
        let event = json(request.body)
        #expect(event["type"] as? String == "job.failed")
        let data = try #require(event["data"] as? [String: Any])
        #expect(data["id"] as? String == id)
        #expect(data["status"] as? String == "failed")
        #expect((data["error"] as? [String: Any])?["code"] as? String == "node_lost")
        #expect(try await eventually {
            try await b.client.get("/v1/jobs/\(id)/deliveries").json["state"] as? String == "delivered"
        })
        #expect(sink.requestCount == 1)
    }

    @Test("a redelivery asked of node B, for a job node A ran and delivered, is sent by B: same webhook-id and body, recorded after A's attempt")
    func redeliveryOnOtherNode() async throws {
        let cluster = try PostgresTestCluster.shared()
        let url = try cluster.makeDatabase()
        defer { cluster.dropDatabase(url: url) }
        let sink = try makeSink([200])
        defer { sink.stop() }
        let a = try startNodeAInProcess(url)
        defer { a.stop() }
        let b = try startNodeB(url)
        defer { b.stop() }

        let id = try await submit(a.client, sink: sink, input: #"{"name":"alex","max_seconds":0}"#)
        #expect(try await eventually {
            try await b.client.get("/v1/jobs/\(id)/deliveries").json["state"] as? String == "delivered"
        }, "A delivered it, and B reads that from the store")
        let redelivered = try await b.client.post("/v1/jobs/\(id)/deliveries/redeliver")
        #expect(redelivered.status == 202)
        #expect(try await eventually { sink.requestCount >= 2 })
        #expect(try await eventually {
            let deliveries = try await b.client.get("/v1/jobs/\(id)/deliveries").json
            return deliveries["state"] as? String == "delivered" && (deliveries["deliveries"] as? [Any])?.count == 2
        }, "B's attempt is recorded as the second")
        let requests = sink.received
        #expect(requests.count == 2, "sent once by A, once by B; A does not send the redelivery too")
        guard requests.count == 2 else { return }
        #expect(requests[1].headers["webhook-id"] == requests[0].headers["webhook-id"])
        #expect(requests[1].body == requests[0].body)
        #expect(try verifyWebhookSignature(requests[1], secret: Self.secret))
    }

    @Test("a redelivery of an event the rescue made and no claim pass has rendered yet sends the job's body, and stores it")
    func redeliveryRendersRescueEvent() async throws {
        let cluster = try PostgresTestCluster.shared()
        let url = try cluster.makeDatabase()
        defer { cluster.dropDatabase(url: url) }
        let sink = try makeSink([200])
        defer { sink.stop() }
        // Node A takes the job, then stops; what the rescue writes for a job it fails (its node
        // died, out of attempts) is written by hand: the final state, and an event with no body
        // yet. Not due for an hour, so that no claim pass renders it before the redelivery.
        let a = try startNodeB(url)
        let id = try await submit(a.client, sink: sink, input: #"{"name":"alex","max_seconds":0}"#, maxAttempts: 1)
        a.stop()
        let connection = try PostgresConnection(connectingTo: PostgresConnectionString(url))
        defer { connection.close() }
        try connection.execute("""
            UPDATE jobs SET status = 'failed', error_code = 'node_lost', error_message = 'The node running the job stopped.',
                            finished_at = (extract(epoch FROM now()) * 1000000)::bigint
            WHERE id = $1::uuid
            """, [id])
        try connection.execute("""
            INSERT INTO webhook_events (job_id, webhook_id, url, body, state, round_start, next_attempt_at, node)
            VALUES ($1::uuid, 'msg_rescue1', $2, ''::bytea, 'pending', 0, (extract(epoch FROM now() + interval '1 hour') * 1000000)::bigint, NULL)
            """, [id, "\(sink.url)/hook"])

        let b = try startNodeB(url)
        defer { b.stop() }
        #expect(try await b.client.get("/v1/jobs/\(id)").json["status"] as? String == "failed")
        let redelivered = try await b.client.post("/v1/jobs/\(id)/deliveries/redeliver")
        #expect(redelivered.status == 202)
        #expect(try await eventually { sink.requestCount >= 1 })
        let request = try #require(sink.received.first)
        #expect(request.headers["webhook-id"] == "msg_rescue1")
        #expect(try verifyWebhookSignature(request, secret: Self.secret))
        let event = json(request.body)
        #expect(event["type"] as? String == "job.failed")
        #expect((event["data"] as? [String: Any])?["id"] as? String == id)
        // Stored, so that every later attempt, on any node, sends these bytes.
        #expect(try await eventually {
            try connection.query("SELECT body FROM webhook_events WHERE job_id = $1::uuid", [id]).first?.bytes("body") == request.body
        })
    }

    @Test("a redelivery the store refuses (this node's lease lapsed) answers 503, not 202, and sends nothing")
    func refusedRedeliveryAnswers503() async throws {
        let cluster = try PostgresTestCluster.shared()
        let url = try cluster.makeDatabase()
        defer { cluster.dropDatabase(url: url) }
        let sink = try makeSink([200])
        defer { sink.stop() }
        let (a, id) = try await deliveredJob(url, sink: sink)
        defer { a.stop() }
        // Node B's heartbeat is a minute away: its lease lapses in the database (as in a long
        // pause) before B can notice.
        let b = try startNodeB(url, lease: NodeLeaseSettings(heartbeat: .seconds(60), lease: .seconds(180)))
        defer { b.stop() }
        let node = try #require(try await b.client.get("/v1/stats").json["node"] as? String)
        let connection = try PostgresConnection(connectingTo: PostgresConnectionString(url))
        defer { connection.close() }
        try connection.execute("UPDATE nodes SET lease_until = now() - interval '1 second' WHERE id = $1::uuid", [node])
        let refused = try await b.client.post("/v1/jobs/\(id)/deliveries/redeliver")
        #expect(refused.status == 503)
        #expect(refused.json["type"] as? String == "urn:jobpool:problem:redelivery-not-stored", "\(refused.json)")
        #expect(refused.header("Retry-After") == "1")
        #expect(try await !eventually(timeout: .seconds(2)) { sink.requestCount > 1 }, "nothing is sent")
    }

    @Test("a redelivery whose write waits on a row lock answers 503 redelivery-not-confirmed after its wait; once the lock is gone it is stored and sent")
    func unconfirmedRedeliveryIsStoredLater() async throws {
        let cluster = try PostgresTestCluster.shared()
        let url = try cluster.makeDatabase()
        defer { cluster.dropDatabase(url: url) }
        let sink = try makeSink([200])
        defer { sink.stop() }
        let (a, id) = try await deliveredJob(url, sink: sink)
        defer { a.stop() }
        // Another session holds the event's row: the redelivery's write waits for it.
        let holder = try PostgresConnection(connectingTo: PostgresConnectionString(url))
        defer { holder.close() }
        try holder.execute("BEGIN")
        try holder.execute("SELECT 1 FROM webhook_events WHERE job_id = $1::uuid FOR UPDATE", [id])
        let asked = ContinuousClock.now
        let answer = try await a.client.post("/v1/jobs/\(id)/deliveries/redeliver")
        let waited = ContinuousClock.now - asked
        #expect(answer.status == 503, "\(answer.text)")
        #expect(answer.json["type"] as? String == "urn:jobpool:problem:redelivery-not-confirmed", "\(answer.text)")
        #expect(waited >= .seconds(9) && waited < .seconds(20), "answered at the wait (10 s), not before: \(waited)")
        #expect(sink.requestCount == 1, "nothing sent while the write waits")
        try holder.execute("ROLLBACK")
        #expect(try await eventually { sink.requestCount == 2 }, "stored once the lock is gone, then sent")
    }

    @Test("a redelivery while the database is away answers 503 within its wait, not when the database is back")
    func redeliveryDuringOutageAnswers() async throws {
        // A server of its own, since this test stops it.
        let server = try PostgresTestCluster.makePrivate()
        defer { server.stop() }
        let url = try server.makeDatabase()
        let sink = try makeSink([200])
        defer { sink.stop() }
        let (a, id) = try await deliveredJob(url, sink: sink)
        defer { a.stop() }
        try server.stopServer()
        defer { try? server.startServer() }
        let asked = ContinuousClock.now
        let answer = try await a.client.post("/v1/jobs/\(id)/deliveries/redeliver")
        #expect(answer.status == 503, "\(answer.text)")
        #expect(ContinuousClock.now - asked < .seconds(15), "answered within the wait, with the database still away")
        let type = answer.json["type"] as? String
        #expect(type == "urn:jobpool:problem:redelivery-not-confirmed" || type == "urn:jobpool:problem:store-unavailable", "\(answer.text)")
    }
}
