import Foundation
import JobAPI
import OutboundHTTP
import Testing

/// `--egress-proxy`: curl connects to the proxy, never to the host, so the socket-open check
/// cannot see the destination. jobpool must still refuse literal internal addresses, on the
/// first URL and on every redirect hop, and must not let `no_proxy` route around the proxy.
///
/// The proxy is a ``FetchTargetServer`` on 127.0.0.1 that records each request line and
/// answers it itself: as the origin `origin.test` (the standard routes, redirects included),
/// and with a small page for any other URL. It forwards nothing, so even a bug sends no packet
/// further than the proxy; the tests look at what it was asked for.
extension NetworkNamespaceTests {
    /// The origin that the proxy plays itself.
    var proxyOrigin: String { "http://origin.test" }

    /// The recording proxy, on 127.0.0.1.
    func makeProxy() throws -> FetchTargetServer {
        let origin = proxyOrigin
        return try FetchTargetServer(host: "127.0.0.1") { request in
            if request.path.hasPrefix(origin + "/") {
                return FetchTargetServer.standardRoutes(String(request.path.dropFirst(origin.count)))
            }
            return (.zero, .page(status: 200, body: Array("answered by the proxy".utf8)))
        }
    }

    private func fetch(_ server: TestServer, _ url: String) async throws -> [String: any Sendable] {
        let body = try JSONSerialization.data(withJSONObject: ["kind": "fetch_url", "input": ["url": url, "timeout_seconds": 10]])
        let response = try await server.client.send("POST", "/v1/jobs", bodyData: body, headers: ["Prefer": "wait=30"])
        #expect(response.status == 200, "\(response.text)")
        return response.json
    }

    private func errorCode(_ job: [String: any Sendable]) -> String? {
        (job["error"] as? [String: Any])?["code"] as? String
    }

    @Test("through the proxy, a redirect to a blocked literal fails blocked_address and the proxy never sees it",
          arguments: [
              "http://127.0.0.1:PORT/page/5", "http://127.0.0.1.:PORT/page/5", "http://127.1:PORT/page/5",
              "http://0x7f000001:PORT/page/5", "http://2130706433:PORT/page/5", "http://[::1]:PORT/page/5",
              "http://[::ffff:0:7f00:1]:PORT/page/5", "http://[::ffff:127.0.0.1]:PORT/page/5",
              "http://169.254.169.254./latest/meta-data/", "http://%31%32%37.0.0.1:PORT/page/5",
          ])
    func proxyRedirectToBlockedLiteral(template: String) async throws {
        try requireLoopbackOnly()
        let internalService = try FetchTargetServer(host: "127.0.0.1")
        defer { internalService.stop() }
        let proxy = try makeProxy()
        defer { proxy.stop() }
        let server = try TestServer { $0.outbound.egressProxy = proxy.url }
        defer { server.stop() }
        let blocked = template.replacingOccurrences(of: "PORT", with: "\(internalService.port)")
        let job = try await fetch(server, "\(proxyOrigin)/redirect-to?\(blocked)")
        #expect(job["status"] as? String == "failed")
        #expect(errorCode(job) == "blocked_address", "\(blocked): \(job)")
        #expect(proxy.received.map(\.path) == ["\(proxyOrigin)/redirect-to?\(blocked)"])
        #expect(internalService.requestCount == 0)
    }

    /// A non-ASCII host: in a UTF-8 locale curl's IDNA step would turn "①②⑦.0.0.1" into
    /// 127.0.0.1 after the check, so it is refused (as protocol) whatever the locale.
    @Test("through the proxy, a blocked literal or a non-ASCII host in the submitted URL never reaches the proxy",
          arguments: [
              ("http://127.1/", "blocked_address"), ("http://127.0.0.1./", "blocked_address"),
              ("http://[::ffff:0:7f00:1]/", "blocked_address"), ("http://0x7f000001/", "blocked_address"),
              ("http://[::1]/", "blocked_address"), ("http://①②⑦.0.0.1/", "protocol"),
              ("http://%E2%91%A0%E2%91%A1%E2%91%A6.0.0.1/", "protocol"), ("http://ｌｏｃａｌｈｏｓｔ/", "protocol"),
          ])
    func proxySubmittedURL(url: String, code: String) async throws {
        try requireLoopbackOnly()
        let proxy = try makeProxy()
        defer { proxy.stop() }
        let server = try TestServer { $0.outbound.egressProxy = proxy.url }
        defer { server.stop() }
        let job = try await fetch(server, url)
        #expect(errorCode(job) == code, "\(url): \(job)")
        #expect(proxy.requestCount == 0)
    }

    @Test("through the proxy, allowed redirects are followed hop by hop, each through the proxy")
    func proxyFollowsRedirects() async throws {
        try requireLoopbackOnly()
        let proxy = try makeProxy()
        defer { proxy.stop() }
        let server = try TestServer { $0.outbound.egressProxy = proxy.url }
        defer { server.stop() }
        let job = try await fetch(server, "\(proxyOrigin)/redirect/3")
        let result = try #require(job["result"] as? [String: Any], "\(job)")
        #expect(result["status"] as? Int == 200)
        #expect(result["length"] as? Int == 10)
        #expect(result["redirects"] as? Int == 3)
        #expect(result["final_url"] as? String == "\(proxyOrigin)/page/10")
        #expect(proxy.received.map(\.path) == ["/redirect/3", "/redirect/2", "/redirect/1", "/page/10"].map { proxyOrigin + $0 })
        let tooMany = try await fetch(server, "\(proxyOrigin)/redirect/9")
        #expect(errorCode(tooMany) == "too_many_redirects", "\(tooMany)")
    }

    @Test("no_proxy=localhost in jobpool's environment does not route around the proxy")
    func noProxyIgnored() async throws {
        try requireLoopbackOnly()
        let internalService = try FetchTargetServer(host: "127.0.0.1")
        defer { internalService.stop() }
        let proxy = try makeProxy()
        defer { proxy.stop() }
        // The suite is serialized, so no other test's transfer reads the environment meanwhile.
        setenv("no_proxy", "localhost,127.0.0.1", 1)
        setenv("NO_PROXY", "localhost,127.0.0.1", 1)
        defer { unsetenv("no_proxy"); unsetenv("NO_PROXY") }
        let server = try TestServer { $0.outbound.egressProxy = proxy.url }
        defer { server.stop() }
        let url = "http://localhost:\(internalService.port)/page/5"
        let job = try await fetch(server, url)
        #expect(job["status"] as? String == "succeeded", "\(job)")
        #expect(proxy.received.map(\.path) == [url])
        #expect(internalService.requestCount == 0)
    }
}
