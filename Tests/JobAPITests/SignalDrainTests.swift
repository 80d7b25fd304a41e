import Foundation
import Testing

/// `jobpool serve` stopped the way an orchestrator stops it, with a signal to the real process:
/// the drain keeps the promises made to clients, and the process exits 0.
@Suite("SIGTERM drains the real process")
struct SignalDrainTests {
    /// Requests parked on jobs right now, as `/metrics` reports them.
    private static func waitingRequests(_ client: TestHTTPClient) async throws -> Int? {
        let text = try await client.get("/metrics").text
        return text.firstMatch(of: /\njobpool_requests_waiting (\d+)/).flatMap { Int($0.1) }
    }

    @Test("after SIGTERM a parked waiter gets its job's final state, new submissions get 503, and the process exits 0")
    func drainOnSIGTERM() async throws {
        // Each job runs until the test releases its page: the waited-for one first, then the
        // other, which keeps the drain going after it, so that submissions are refused on both
        // sides of the first one's end.
        let target = try HeldFetchTarget(pages: ["waited", "other"])
        defer { target.stop() }
        let process = try JobpoolProcess(["serve", "--port", "0", "--store", "memory", "--shutdown-grace", "60",
                                          "--allow-cidr", "127.0.0.2/32"])
        defer { process.stop() }
        let client = TestHTTPClient(baseURL: "http://127.0.0.1:\(try process.waitUntilListening())")
        var ids: [String] = []
        for page in ["waited", "other"] {
            let submitted = try await client.post("/v1/jobs", #"{"kind":"fetch_url","input":{"url":"\#(target.url(page))"}}"#)
            ids.append(try #require(submitted.json["id"] as? String, "\(submitted.text)"))
        }
        try #require(try await eventually { target.requestCount == 2 }, "the fetches never started: \(process.log)")
        async let parked = client.get("/v1/jobs/\(ids[0])?wait=60")
        try #require(try await eventually { try await Self.waitingRequests(client) == 1 }, "the waiter never parked")

        process.send(SIGTERM)
        #expect(try await eventually { try await client.get("/readyz").status == 503 }, "the drain never began: \(process.log)")
        let refused = try await client.submitWriteCode()
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") != nil)

        target.release("waited")
        let answer = try await parked
        #expect(answer.status == 200)
        #expect(answer.json["status"] as? String == "succeeded", "the waiter got its job before it ended: \(answer.json)")
        #expect(answer.json["result"] is [String: Any])
        #expect(try await client.submitWriteCode().status == 503, "still draining while the other job runs")

        target.release("other")
        // Polled, not waited on: a blocking wait would hold one of the test runner's threads.
        #expect(try await eventually(timeout: .seconds(30)) { process.waitForExit(timeout: .zero) != nil })
        #expect(process.waitForExit(timeout: .zero) == 0, "\(process.log)")
        #expect(process.log.contains("Draining") && process.log.contains("Stopped"), "\(process.log)")
        #expect(!process.log.contains("grace period ended"), "both jobs finished within the grace period: \(process.log)")
    }

    @Test("SIGINT (Ctrl-C) drains and stops it the same way")
    func drainOnSIGINT() async throws {
        let process = try JobpoolProcess(["serve", "--port", "0", "--store", "memory"])
        defer { process.stop() }
        let client = TestHTTPClient(baseURL: "http://127.0.0.1:\(try process.waitUntilListening())")
        #expect(try await client.get("/healthz").status == 200)
        process.send(SIGINT)
        #expect(try await eventually(timeout: .seconds(20)) { process.waitForExit(timeout: .zero) != nil })
        #expect(process.waitForExit(timeout: .zero) == 0, "\(process.log)")
        #expect(process.log.contains("Draining") && process.log.contains("Stopped"), "\(process.log)")
    }
}
