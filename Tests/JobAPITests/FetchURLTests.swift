import Foundation
import JobAPI
import OutboundHTTP
import Testing

/// fetch_url end to end: the real server fetching from local targets. Allowed targets listen on
/// 127.0.0.2 (opened with --allow-cidr 127.0.0.2/32); 127.0.0.1 and ::1 stay blocked, as by default.
@Suite("fetch_url")
struct FetchURLTests {
    private func makeServer(workers: Int = 4) throws -> TestServer {
        try TestServer {
            $0.executor.workers = workers
            $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.2/32")!])
        }
    }

    /// Submits a fetch and waits for it to finish; returns the job.
    private func fetch(_ server: TestServer, _ input: String) async throws -> [String: any Sendable] {
        let response = try await server.client.post("/v1/jobs", #"{"kind":"fetch_url","input":\#(input)}"#,
                                                     headers: ["Prefer": "wait=30"])
        #expect(response.status == 200, "\(response.text)")
        return response.json
    }

    private func errorCode(_ job: [String: any Sendable]) -> String? {
        (job["error"] as? [String: Any])?["code"] as? String
    }

    @Test("the seed crawler: three pages on two workers, lengths right, never more than two at once")
    func seedScenario() async throws {
        let server = try makeServer(workers: 2)
        defer { server.stop() }
        let target = try FetchTargetServer()
        defer { target.stop() }
        let sizes = [1_000, 25_000, 300_000]
        let ids = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for size in sizes {
                group.addTask {
                    let response = try await server.client.post(
                        "/v1/jobs", #"{"kind":"fetch_url","input":{"url":"\#(target.url)/slow/300/\#(size)"}}"#)
                    return (size, response.json["id"] as? String ?? "")
                }
            }
            return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
        }
        for size in sizes {
            let job = try await server.client.get("/v1/jobs/\(ids[size] ?? "")?wait=30").json
            #expect(job["status"] as? String == "succeeded")
            let result = try #require(job["result"] as? [String: Any])
            #expect(result["length"] as? Int == size)
            #expect(result["status"] as? Int == 200)
            #expect(result["content_type"] as? String == "text/html")
            #expect(result["redirects"] as? Int == 0)
            #expect(result["final_url"] as? String == "\(target.url)/slow/300/\(size)")
            #expect(result["elapsed_ms"] is Int)
        }
        #expect(target.peakConcurrency == 2)
    }

    @Test("404 and 500 are results: the fetch itself worked")
    func errorStatuses() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let target = try FetchTargetServer()
        defer { target.stop() }
        for status in [404, 500] {
            let job = try await fetch(server, #"{"url":"\#(target.url)/status/\#(status)"}"#)
            #expect(job["status"] as? String == "succeeded")
            #expect((job["result"] as? [String: Any])?["status"] as? Int == status)
        }
    }

    @Test("redirects are followed up to five, and reported")
    func redirects() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let target = try FetchTargetServer()
        defer { target.stop() }
        let followed = try await fetch(server, #"{"url":"\#(target.url)/redirect/3"}"#)
        let result = try #require(followed["result"] as? [String: Any])
        #expect(result["redirects"] as? Int == 3)
        #expect(result["final_url"] as? String == "\(target.url)/page/10")
        #expect(result["length"] as? Int == 10)
        let notFollowed = try await fetch(server, #"{"url":"\#(target.url)/redirect/3","follow_redirects":false}"#)
        #expect((notFollowed["result"] as? [String: Any])?["status"] as? Int == 302)
        let tooMany = try await fetch(server, #"{"url":"\#(target.url)/redirect/7"}"#)
        #expect(tooMany["status"] as? String == "failed")
        #expect(errorCode(tooMany) == "too_many_redirects")
    }

    @Test("transport failures fail the job with the right code")
    func failures() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let target = try FetchTargetServer()
        defer { target.stop() }
        let timeout = try await fetch(server, #"{"url":"\#(target.url)/hang","timeout_seconds":0.5}"#)
        #expect(errorCode(timeout) == "timeout")
        let tooLarge = try await fetch(server, #"{"url":"\#(target.url)/page/5000","max_bytes":1000}"#)
        #expect(errorCode(tooLarge) == "too_large")
        let endless = try await fetch(server, #"{"url":"\#(target.url)/endless","max_bytes":200000}"#)
        #expect(errorCode(endless) == "too_large")
        let bomb = try await fetch(server, #"{"url":"\#(target.url)/gzip-bomb","max_bytes":1048576}"#)
        #expect(errorCode(bomb) == "too_large", "decoded bytes count against max_bytes")
        let fitting = try await fetch(server, #"{"url":"\#(target.url)/gzip-bomb","max_bytes":10485760}"#)
        #expect((fitting["result"] as? [String: Any])?["length"] as? Int == 8_388_608)

        // A port nobody listens on: bind one, note it, close it.
        let closed = try FetchTargetServer()
        closed.stop()
        let refused = try await fetch(server, #"{"url":"http://127.0.0.2:\#(closed.port)/"}"#)
        #expect(errorCode(refused) == "connect")
        let message = (refused["error"] as? [String: Any])?["message"] as? String
        #expect((message?.count ?? 0) > 20)
    }

    @Test("loopback in every spelling is blocked by default, and the target sees no request")
    func blockedLoopback() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let blockedV4 = try FetchTargetServer(host: "127.0.0.1")
        defer { blockedV4.stop() }
        let blockedV6 = try FetchTargetServer(host: "::1")
        defer { blockedV6.stop() }
        for url in ["http://127.0.0.1:\(blockedV4.port)/page/1", "http://localhost:\(blockedV4.port)/page/1",
                    "http://[::1]:\(blockedV6.port)/page/1", "http://[::ffff:127.0.0.1]:\(blockedV4.port)/page/1",
                    "http://127.1:\(blockedV4.port)/page/1", "http://2130706433:\(blockedV4.port)/page/1"] {
            let job = try await fetch(server, #"{"url":"\#(url)"}"#)
            #expect(job["status"] as? String == "failed", "\(url)")
            #expect(errorCode(job) == "blocked_address", "\(url)")
            let message = (job["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("--allow-cidr"), "\(url)")
        }
        #expect(blockedV4.requestCount == 0)
        #expect(blockedV6.requestCount == 0)
    }

    @Test("a redirect from an allowed server to a blocked address is caught at connect time")
    func blockedRedirect() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let allowed = try FetchTargetServer()
        defer { allowed.stop() }
        let internalHost = try FetchTargetServer(host: "127.0.0.1")
        defer { internalHost.stop() }
        let job = try await fetch(server, #"{"url":"\#(allowed.url)/redirect-to?http://127.0.0.1:\#(internalHost.port)/page/5"}"#)
        #expect(errorCode(job) == "blocked_address")
        #expect(allowed.requestCount == 1)
        #expect(internalHost.requestCount == 0)
    }

    @Test("proxy environment variables are ignored")
    func proxyVariablesIgnored() async throws {
        let proxy = try FetchTargetServer()
        defer { proxy.stop() }
        let target = try FetchTargetServer()
        defer { target.stop() }
        // curl reads these from the process environment; jobpool must not use them. The test's
        // own client (also curl) is kept off the proxy for jobpool's address by no_proxy, which
        // does not cover the target on 127.0.0.2.
        let names = ["http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        for name in names { setenv(name, proxy.url, 1) }
        setenv("no_proxy", "127.0.0.1", 1)
        defer { for name in names + ["no_proxy"] { unsetenv(name) } }
        let server = try makeServer()
        defer { server.stop() }
        let job = try await fetch(server, #"{"url":"\#(target.url)/page/42"}"#)
        #expect((job["result"] as? [String: Any])?["length"] as? Int == 42)
        #expect(target.requestCount == 1)
        #expect(proxy.requestCount == 0)
    }

    @Test("cancelling a running fetch aborts the transfer at once, not at its timeout")
    func cancelRunningFetch() async throws {
        let server = try makeServer()
        defer { server.stop() }
        let target = try FetchTargetServer()
        defer { target.stop() }
        let id = try #require(try await server.client.post(
            "/v1/jobs", #"{"kind":"fetch_url","input":{"url":"\#(target.url)/hang","timeout_seconds":60}}"#).json["id"] as? String)
        #expect(try await eventually { target.requestCount == 1 })
        let started = ContinuousClock.now
        let cancelled = try await server.client.post("/v1/jobs/\(id)/cancel")
        #expect(cancelled.status == 200)
        #expect(cancelled.json["status"] as? String == "cancelled")
        // The abort itself takes milliseconds (the fetch's own timeout is 60 s); the bound leaves
        // room for the HTTP round trip on a loaded two-core CI machine running tests in parallel.
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    @Test("bad fetch input is a 422 naming the field", arguments: [
        (#"{}"#, "/input/url"),
        (#"{"url":"ftp://example.com/"}"#, "/input/url"),
        (#"{"url":"/relative"}"#, "/input/url"),
        (#"{"url":"example.com"}"#, "/input/url"),
        (#"{"url":"https://example.com/","timeout_seconds":301}"#, "/input/timeout_seconds"),
        (#"{"url":"https://example.com/","max_bytes":104857601}"#, "/input/max_bytes"),
        (#"{"url":"https://example.com/","max_bytes":1.5}"#, "/input/max_bytes"),
        (#"{"url":"https://example.com/","follow_redirects":"yes"}"#, "/input/follow_redirects"),
        (#"{"url":"https://example.com/","method":"POST"}"#, "/input/method"),
    ])
    func invalidInput(input: String, pointer: String) async throws {
        let server = try makeServer()
        defer { server.stop() }
        let response = try await server.client.post("/v1/jobs", #"{"kind":"fetch_url","input":\#(input)}"#)
        #expect(response.status == 422)
        #expect((response.json["errors"] as? [[String: Any]])?.first?["pointer"] as? String == pointer)
    }
}
