import Foundation
import Testing

@Suite("API keys")
struct AccessControlTests {
    static let alice = "alice-key-0123456789abcdef"
    static let bob = "bob-key-0123456789abcdef"

    private func makeServer(metricsKey: String? = nil) throws -> TestServer {
        try TestServer {
            $0.apiKeys = [Self.alice, Self.bob]
            $0.metricsAPIKey = metricsKey
        }
    }

    private func bearer(_ key: String) -> [String: String] { ["Authorization": "Bearer \(key)"] }

    @Test("/v1 needs a key: none or a wrong one is a 401 problem with WWW-Authenticate")
    func keyRequired() async throws {
        let server = try makeServer()
        defer { server.stop() }
        for headers in [[:], bearer("wrong-key-0123456789abcdef"), ["Authorization": "Basic eDp5"]] {
            let response = try await server.client.get("/v1/jobs", headers: headers)
            #expect(response.status == 401)
            #expect(response.header("WWW-Authenticate") == #"Bearer realm="jobpool""#)
            #expect(response.header("Content-Type") == "application/problem+json")
            #expect(!response.text.contains("wrong-key"), "a key is never echoed")
        }
        #expect(try await server.client.submitWriteCode().status == 401)
        #expect(try await server.client.get("/v1/jobs", headers: bearer(Self.alice)).status == 200)
        #expect(try await server.client.get("/healthz").status == 200)
        #expect(try await server.client.get("/readyz").status == 200)
        // With keys and no metrics key, /metrics is closed: it shows every tenant's counts.
        let metrics = try await server.client.get("/metrics", headers: bearer(Self.alice))
        #expect(metrics.status == 403)
        #expect(metrics.json["type"] as? String == "urn:jobpool:problem:metrics-closed")
        #expect((metrics.json["detail"] as? String)?.contains("--metrics-api-key") == true)
    }

    @Test("--public-metrics opens /metrics on purpose although API keys are set")
    func publicMetrics() async throws {
        let server = try TestServer {
            $0.apiKeys = [Self.alice]
            $0.publicMetrics = true
        }
        defer { server.stop() }
        #expect(try await server.client.get("/metrics").status == 200)
        #expect(try await server.client.get("/v1/jobs").status == 401)
    }

    @Test("one tenant cannot fill the queue for all: a 429 names its own limit, and others still submit")
    func tenantQueueShare() async throws {
        let server = try TestServer {
            $0.apiKeys = [Self.alice, Self.bob]
            $0.executor.workers = 1
            $0.executor.maxQueued = 10
            $0.executor.maxQueuedPerOwner = 2
        }
        defer { server.stop() }
        // Alice's first job holds the only worker, so her next ones wait in the queue.
        let blocker = try #require(try await server.client.submitWriteCode(min: 30, max: 30, headers: bearer(Self.alice)).json["id"] as? String)
        #expect(try await eventually {
            try await server.client.get("/v1/jobs/\(blocker)", headers: bearer(Self.alice)).json["status"] as? String == "running"
        })
        var queued: [String] = []
        for _ in 0..<2 {
            let response = try await server.client.submitWriteCode(headers: bearer(Self.alice))
            #expect(response.status == 202)
            queued.append(response.json["id"] as? String ?? "")
        }
        let refused = try await server.client.submitWriteCode(headers: bearer(Self.alice))
        #expect(refused.status == 429)
        #expect(refused.header("Content-Type") == "application/problem+json")
        #expect(refused.header("Retry-After") != nil)
        #expect(refused.json["type"] as? String == "urn:jobpool:problem:tenant-queue-full")
        #expect((refused.json["detail"] as? String)?.contains("2 jobs") == true)
        #expect(try await server.client.submitWriteCode(headers: bearer(Self.bob)).status == 202)
        // A cancelled queued job gives the tenant its slot back.
        #expect(try await server.client.post("/v1/jobs/\(queued[0])/cancel", headers: bearer(Self.alice)).status == 200)
        #expect(try await server.client.submitWriteCode(headers: bearer(Self.alice)).status == 202)
        _ = try await server.client.post("/v1/jobs/\(blocker)/cancel", headers: bearer(Self.alice))
    }

    @Test("each key sees only its own jobs: another tenant's job is a 404 and absent from lists")
    func tenants() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let aliceJob = try #require(try await server.client.submitWriteCode(headers: bearer(Self.alice)).json["id"] as? String)
        let bobJob = try #require(try await server.client.submitWriteCode(headers: bearer(Self.bob)).json["id"] as? String)
        #expect(try await server.client.get("/v1/jobs/\(aliceJob)", headers: bearer(Self.alice)).status == 200)
        #expect(try await server.client.get("/v1/jobs/\(aliceJob)", headers: bearer(Self.bob)).status == 404)
        #expect(try await server.client.post("/v1/jobs/\(aliceJob)/cancel", headers: bearer(Self.bob)).status == 404)
        #expect(try await server.client.get("/v1/jobs/\(aliceJob)/deliveries", headers: bearer(Self.bob)).status == 404)
        let bobList = (try await server.client.get("/v1/jobs", headers: bearer(Self.bob)).json["jobs"] as? [[String: Any]] ?? [])
            .compactMap { $0["id"] as? String }
        #expect(bobList == [bobJob])
    }

    @Test("--metrics-api-key protects /metrics")
    func metricsKey() async throws {
        let server = try makeServer(metricsKey: "metrics-key-0123456789abcdef")
        defer { server.stop() }
        #expect(try await server.client.get("/metrics").status == 401)
        #expect(try await server.client.get("/metrics", headers: bearer(Self.alice)).status == 401)
        #expect(try await server.client.get("/metrics", headers: bearer("metrics-key-0123456789abcdef")).status == 200)
    }
}
