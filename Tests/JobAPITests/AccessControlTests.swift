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
        #expect(try await server.client.get("/metrics").status == 200)
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
