import Foundation
import JobAPI
import OutboundHTTP
import Testing

/// Tests that could make the server send packets beyond this machine: DNS lookups of names
/// that do not exist, and fuzzed URLs with the guard opened. They run only inside a network
/// namespace that has nothing but loopback (`Tests/run.sh` makes one and sets
/// JOBPOOL_NETNS_TESTS=1), where a lookup fails at once and nothing can leave.
///
/// Serialized: the egress-proxy tests change the process environment (`no_proxy`), which curl
/// reads during other tests' transfers.
@Suite("Inside a loopback-only network namespace",
       .enabled(if: ProcessInfo.processInfo.environment["JOBPOOL_NETNS_TESTS"] == "1"), .serialized)
struct NetworkNamespaceTests {
    /// Refuses to go on unless loopback is the only interface, so that a misconfigured run
    /// fails instead of sending traffic out.
    func requireLoopbackOnly() throws {
        // /proc/self/net/dev lists the interfaces of this process's own network namespace.
        let table = try String(contentsOfFile: "/proc/self/net/dev", encoding: .utf8)
        let interfaces = table.split(separator: "\n").dropFirst(2)
            .compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) }
        try #require(interfaces == ["lo"], "not in a loopback-only namespace: \(interfaces)")
    }

    @Test("a name under .invalid fails with dns")
    func unresolvableName() async throws {
        try requireLoopbackOnly()
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.post(
            "/v1/jobs", #"{"kind":"fetch_url","input":{"url":"http://no-such-host.invalid/","timeout_seconds":10}}"#,
            headers: ["Prefer": "wait=20"])
        #expect(response.status == 200)
        #expect(response.json["status"] as? String == "failed")
        #expect((response.json["error"] as? [String: Any])?["code"] as? String == "dns")
    }

    /// Without a proxy the socket-open check refuses these before any packet. Outside the
    /// namespace a mistake could send one towards a real route, so they run here.
    @Test("without a proxy, IPv6 forms of loopback fail blocked_address, named as themselves", arguments: [
        ("http://[::ffff:0:7f00:1]:PORT/", "IPv4-translated", "::ffff:0:7f00:1/128"),
        ("http://[::1]:PORT/", "loopback", "::1/128"),
        ("http://[::ffff:127.0.0.1]:PORT/", "loopback", "127.0.0.1/32"),
        ("http://[::127.0.0.1]:PORT/", "deprecated IPv4-compatible", "::127.0.0.1/128"),
    ])
    func directIPv6Forms(template: String, name: String, hint: String) async throws {
        try requireLoopbackOnly()
        let internalService = try FetchTargetServer(host: "127.0.0.1")
        defer { internalService.stop() }
        let server = try TestServer()
        defer { server.stop() }
        let url = template.replacingOccurrences(of: "PORT", with: "\(internalService.port)")
        let body = try JSONSerialization.data(withJSONObject: ["kind": "fetch_url", "input": ["url": url, "timeout_seconds": 5]])
        let job = try await server.client.send("POST", "/v1/jobs", bodyData: body, headers: ["Prefer": "wait=20"]).json
        let error = try #require(job["error"] as? [String: Any], "\(url): \(job)")
        #expect(error["code"] as? String == "blocked_address", "\(url): \(error)")
        let message = error["message"] as? String ?? ""
        #expect(message.contains("in the \(name) range") && message.contains("--allow-cidr \(hint) "), "\(message)")
        #expect(internalService.requestCount == 0)
    }

    @Test("fuzzed URLs, with every address allowed, never crash the server and every accepted job finishes")
    func fuzzedURLs() async throws {
        try requireLoopbackOnly()
        let server = try TestServer {
            $0.executor.workers = 8
            $0.outbound.policy = AddressPolicy(allowsPrivateNetworks: true)
        }
        defer { server.stop() }
        var generator = SystemRandomNumberGenerator()
        let schemes = ["http", "https", "HTTP", "ftp", "file", "gopher", "", "http:", "ht tp"]
        let hosts = ["127.0.0.1", "[::1]", "localhost", "a.invalid", "10.0.0.1", "169.254.169.254", "[fe80::1%25lo]",
                     "0", "0x7f000001", "%31%32%37.0.0.1", "exa mple.invalid", "", "@", "user:pass@127.0.0.1",
                     String(repeating: "a", count: 300) + ".invalid"]
        let tails = [":1/", ":65536/", ":0/", "/%00", "/../../etc/passwd", "/?q=\u{1F600}", "#frag", "/\\\\", ":80:80/", ""]
        let urls = (0..<150).map { _ in
            schemes.randomElement(using: &generator)! + "://" + hosts.randomElement(using: &generator)!
                + tails.randomElement(using: &generator)!
        }
        try await fetchAll(urls, on: server)
        #expect(try await server.client.get("/healthz").status == 200)
    }

    /// Submits a fetch of each URL (2 s timeout), expecting `202` or `422`, and waits for every
    /// accepted job to finish.
    func fetchAll(_ urls: [String], on server: TestServer) async throws {
        var accepted: [String] = []
        for url in urls {
            let body = try JSONSerialization.data(withJSONObject: ["kind": "fetch_url", "input": ["url": url, "timeout_seconds": 2]])
            let response = try await server.client.send("POST", "/v1/jobs", bodyData: body)
            #expect([202, 422].contains(response.status), "\(url) → \(response.status)")
            if response.status == 202, let id = response.json["id"] as? String { accepted.append(id) }
        }
        for id in accepted {
            let job = try await server.client.get("/v1/jobs/\(id)?wait=30").json
            #expect(["succeeded", "failed"].contains(job["status"] as? String), "\(job)")
        }
    }
}
