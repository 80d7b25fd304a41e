import Foundation
import OutboundHTTP
import Testing

@Suite("Idempotency-Key on POST /v1/jobs")
struct IdempotencyTests {
    // Port 9 on 127.0.0.2 (allowed below) refuses the delivery: nothing leaves the machine.
    private let body = #"{"kind":"write_code","input":{"name":"alex","max_seconds":0},"webhook":{"url":"http://127.0.0.2:9/hook"}}"#

    @Test("the same key and body return the original job, secret included, and create nothing")
    func replay() async throws {
        let server = try TestServer { $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.2/32")!]) }
        defer { server.stop() }
        let first = try await server.client.post("/v1/jobs", body, headers: ["Idempotency-Key": "order-42"])
        #expect(first.status == 202)
        let secret = (first.json["webhook"] as? [String: Any])?["secret"] as? String
        #expect(secret?.hasPrefix("whsec_") == true)
        let second = try await server.client.post("/v1/jobs", body, headers: ["Idempotency-Key": "order-42"])
        #expect(second.status == 202)
        #expect(second.json["id"] as? String == first.json["id"] as? String)
        #expect(second.header("Location") == first.header("Location"))
        #expect(second.header("Idempotent-Replayed") == "true")
        #expect((second.json["webhook"] as? [String: Any])?["secret"] as? String == secret)
        let list = try await server.client.get("/v1/jobs")
        #expect((list.json["jobs"] as? [Any])?.count == 1)
    }

    @Test("the same key with a different body is 422; another key makes a new job")
    func differentBody() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let first = try await server.client.submitWriteCode(name: "a", headers: ["Idempotency-Key": "k1"])
        #expect(first.status == 202)
        let reused = try await server.client.submitWriteCode(name: "b", headers: ["Idempotency-Key": "k1"])
        #expect(reused.status == 422)
        #expect(reused.header("Content-Type") == "application/problem+json")
        #expect(reused.json["type"] as? String == "urn:jobpool:problem:idempotency-key-reused")
        let other = try await server.client.submitWriteCode(name: "b", headers: ["Idempotency-Key": "k2"])
        #expect(other.status == 202)
        #expect(other.json["id"] as? String != first.json["id"] as? String)
    }

    @Test("a request while the first with its key is still in flight gets 409")
    func inFlight() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let body = #"{"kind":"write_code","input":{"name":"slow","min_seconds":3,"max_seconds":3}}"#
        async let first = server.client.post("/v1/jobs", body, headers: ["Idempotency-Key": "wait-1", "Prefer": "wait=10"])
        // The first request parks until its job finishes: wait until it has been accepted.
        #expect(try await eventually { try await server.client.get("/v1/stats").json["workers_busy"] as? Int == 1 })
        let second = try await server.client.post("/v1/jobs", body, headers: ["Idempotency-Key": "wait-1"])
        #expect(second.status == 409)
        #expect(second.header("Retry-After") != nil)
        let original = try await first
        #expect(original.status == 200)
        let replay = try await server.client.post("/v1/jobs", body, headers: ["Idempotency-Key": "wait-1"])
        #expect(replay.json["id"] as? String == original.json["id"] as? String)
        #expect(replay.json["status"] as? String == "succeeded")
    }

    @Test("an expired key creates a new job")
    func expiry() async throws {
        let lifetime = Duration.seconds(2)
        let server = try TestServer { $0.api.idempotencyKeyLifetime = lifetime }
        defer { server.stop() }
        let submitted = ContinuousClock.now
        let first = try await server.client.submitWriteCode(headers: ["Idempotency-Key": "short-lived"])
        let firstID = first.json["id"] as? String
        let replayedID = try await server.client.submitWriteCode(headers: ["Idempotency-Key": "short-lived"]).json["id"] as? String
        // A loaded CI machine can take longer than the lifetime between two requests; only a
        // replay that surely came while the key was live must find the first job.
        if ContinuousClock.now - submitted < lifetime { #expect(replayedID == firstID) }
        let renewed = try await eventually {
            try await server.client.submitWriteCode(headers: ["Idempotency-Key": "short-lived"]).json["id"] as? String != firstID
        }
        #expect(renewed)
    }

    @Test("keys are scoped per API key, and a bad key is a 400")
    func scopedPerTenant() async throws {
        let server = try TestServer { $0.apiKeys = ["key-alice-0123456789", "key-bob-0123456789"] }
        defer { server.stop() }
        let alice = try await server.client.submitWriteCode(headers: ["Idempotency-Key": "same", "Authorization": "Bearer key-alice-0123456789"])
        let bob = try await server.client.submitWriteCode(headers: ["Idempotency-Key": "same", "Authorization": "Bearer key-bob-0123456789"])
        #expect(alice.status == 202 && bob.status == 202)
        #expect(alice.json["id"] as? String != bob.json["id"] as? String)
        let bad = try await server.client.submitWriteCode(headers: ["Idempotency-Key": "has space", "Authorization": "Bearer key-bob-0123456789"])
        #expect(bad.status == 400)
    }
}
