import Foundation
import Testing

/// The dashboard's files at /ui/: served from the binary with the headers the issue asks for.
/// (The browser tests in Tests/browser/ drive the page itself.)
@Suite("Dashboard files (/ui/)")
struct DashboardTests {
    private static let files = ["", "index.html", "app.css", "favicon.svg", "app.js", "api.js", "dom.js", "sse.js", "chart.js",
                                "overview.js", "jobs.js", "job.js", "submit.js"]

    @Test("every file: CSP, nosniff, a content type, ETag revalidation; 80 KB in all")
    func headersAndSize() async throws {
        let server = try TestServer()
        defer { server.stop() }
        var total = 0
        for name in Self.files {
            let reply = try await server.client.get("/ui/" + name)
            #expect(reply.status == 200, "\(name)")
            #expect(reply.header("Content-Security-Policy")?.hasPrefix("default-src 'self'; frame-ancestors 'none'") == true)
            #expect(reply.header("X-Content-Type-Options") == "nosniff")
            let type = reply.header("Content-Type") ?? ""
            if name.hasSuffix(".js") { #expect(type.hasPrefix("text/javascript")) }
            if name.isEmpty || name.hasSuffix(".html") { #expect(type.hasPrefix("text/html")) }
            let etag = try #require(reply.header("ETag"))
            let again = try await server.client.get("/ui/" + name, headers: ["If-None-Match": etag])
            #expect(again.status == 304)
            #expect(again.body.isEmpty)
            if !name.isEmpty { total += reply.body.count }
        }
        #expect(total <= 80 * 1024, "the dashboard is \(total) bytes")
    }

    @Test("the page has no inline script, style or handler, and loads nothing from another origin")
    func noInlineCode() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let page = try await server.client.get("/ui/").text
        // Every <script> has a src; no on...= attributes, no style attributes, no http(s) URLs.
        let scripts = page.components(separatedBy: "<script").dropFirst()
        #expect(!scripts.isEmpty)
        #expect(scripts.allSatisfy { $0.prefix(while: { $0 != ">" }).contains("src=") })
        #expect(page.range(of: #"\son[a-z]+="#, options: .regularExpression) == nil)
        #expect(!page.contains("style="))
        #expect(!page.contains("http://") && !page.contains("https://"))
        for name in Self.files where name.hasSuffix(".js") {
            let script = try await server.client.get("/ui/" + name).text
            #expect(!script.contains("innerHTML") && !script.contains("insertAdjacentHTML") && !script.contains("eval("), "\(name)")
        }
    }

    @Test("/ui redirects to /ui/; an unknown file is 404; other methods are 405")
    func routes() async throws {
        let server = try TestServer()
        defer { server.stop() }
        // Raw: URLSession on Linux loops on a relative Location that only adds a slash.
        let socket = try RawSocket(port: server.port)
        socket.write("GET /ui HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        let redirect = await onThread { socket.read() }
        #expect(redirect.hasPrefix("HTTP/1.1 301"))
        #expect(redirect.contains("Location: /ui/\r\n"))
        #expect(try await server.client.get("/ui/nope.js").status == 404)
        #expect(try await server.client.get("/ui/..%2Fopenapi.yaml").status == 404)
        #expect(try await server.client.post("/ui/", "{}").status == 405)
    }
}
