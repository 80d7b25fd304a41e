import Foundation
import JobCore
import OutboundHTTP
import Synchronization
import Testing

@Suite("Retries and time limits")
struct RetryAndTimeLimitTests {
    private func makeServer(backoff: Duration = .milliseconds(50)) throws -> TestServer {
        try TestServer {
            $0.executor.workers = 2
            $0.executor.retryBackoff = RetryBackoff(base: backoff, cap: backoff * 4)
            $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.2/32")!])
        }
    }

    /// A target that answers 503 to the first `failures` requests, then 200.
    private func flakyTarget(failures: Int) throws -> FetchTargetServer {
        let seen = Mutex(0)
        return try FetchTargetServer { _ in
            let count = seen.withLock { $0 += 1; return $0 }
            return (.zero, .page(status: count <= failures ? 503 : 200, body: Array("ok".utf8)))
        }
    }

    private func submitAndWait(_ server: TestServer, _ body: String) async throws -> TestHTTPClient.Response {
        let response = try await server.client.post("/v1/jobs", body, headers: ["Prefer": "wait=30"])
        #expect(response.status == 200, "\(response.text)")
        return response
    }

    @Test("a 5xx listed in retry_on_status is retried, and the retry then succeeds")
    func retryThenSucceed() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let target = try flakyTarget(failures: 2)
        defer { target.stop() }
        let job = try await submitAndWait(server, #"{"kind":"fetch_url","max_attempts":3,"input":{"url":"\#(target.url)/x","retry_on_status":[503]}}"#)
        #expect(job.json["status"] as? String == "succeeded")
        #expect(job.json["attempt"] as? Int == 3)
        #expect((job.json["result"] as? [String: Any])?["status"] as? Int == 200)
        #expect(target.requestCount == 3)
    }

    @Test("5xx retries that run out fail with http_status and the last status")
    func retriesRunOut() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let target = try flakyTarget(failures: 100)
        defer { target.stop() }
        let job = try await submitAndWait(server, #"{"kind":"fetch_url","max_attempts":2,"input":{"url":"\#(target.url)/x","retry_on_status":[502,503]}}"#)
        #expect(job.json["status"] as? String == "failed")
        #expect(job.errorMember("code") as? String == "http_status")
        #expect(job.errorMember("status") as? Int == 503)
        #expect(job.json["attempt"] as? Int == 2)
        #expect(target.requestCount == 2)
    }

    @Test("without retry_on_status a 5xx is a result, fetched once")
    func fiveHundredIsAResult() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let target = try flakyTarget(failures: 100)
        defer { target.stop() }
        let job = try await submitAndWait(server, #"{"kind":"fetch_url","input":{"url":"\#(target.url)/x"}}"#)
        #expect(job.json["status"] as? String == "succeeded")
        #expect(target.requestCount == 1)
    }

    @Test("a waiting retry shows scheduled, attempt, next_attempt_at and last_error")
    func waitingRetryIsVisible() async throws {
        let server = try makeServer(backoff: .seconds(30))
        defer { server.stop() }
        let target = try flakyTarget(failures: 100)
        defer { target.stop() }
        let submitted = try await server.client.post("/v1/jobs", #"{"kind":"fetch_url","input":{"url":"\#(target.url)/x","retry_on_status":[503]}}"#)
        let path = try #require(submitted.header("Location"))
        var job = submitted
        #expect(try await eventually {
            job = try await server.client.get(path)
            return job.json["status"] as? String == "scheduled"
        })
        #expect(job.json["attempt"] as? Int == 2)
        #expect(job.json["next_attempt_at"] as? String != nil)
        #expect((job.json["last_error"] as? [String: Any])?["code"] as? String == "http_status")
        #expect(job.json["error"] is NSNull)
        // A job waiting to retry can be cancelled.
        #expect(try await server.client.post(path + "/cancel").status == 200)
        #expect(try await server.client.get(path).json["status"] as? String == "cancelled")
    }

    @Test("a fetch timeout is retried; a blocked address is not")
    func timeoutRetriedBlockedNot() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let target = try FetchTargetServer { _ in (.zero, .hang) }
        defer { target.stop() }
        let timedOut = try await submitAndWait(server, #"{"kind":"fetch_url","max_attempts":2,"input":{"url":"\#(target.url)/x","timeout_seconds":0.2}}"#)
        #expect(timedOut.errorMember("code") as? String == "timeout")
        #expect(timedOut.json["attempt"] as? Int == 2)
        let blocked = try await submitAndWait(server, #"{"kind":"fetch_url","max_attempts":3,"input":{"url":"http://127.0.0.1:9/"}}"#)
        #expect(blocked.errorMember("code") as? String == "blocked_address")
        #expect(blocked.json["attempt"] as? Int == 1)
    }

    @Test("a job past time_limit_seconds fails with time_limit and is never retried")
    func timeLimit() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let started = ContinuousClock.now
        let job = try await submitAndWait(server, #"{"kind":"write_code","max_attempts":3,"time_limit_seconds":0.3,"input":{"name":"slow","min_seconds":5,"max_seconds":5}}"#)
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(job.json["status"] as? String == "failed")
        #expect(job.errorMember("code") as? String == "time_limit")
        #expect(job.json["attempt"] as? Int == 1)
        #expect(job.json["time_limit_seconds"] as? Double == 0.3)
        let fine = try await submitAndWait(server, #"{"kind":"write_code","time_limit_seconds":10,"input":{"name":"quick","max_seconds":0}}"#)
        #expect(fine.json["status"] as? String == "succeeded")
    }
}
