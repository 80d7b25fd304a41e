import Foundation
@testable import JobAPI
import Testing

/// A web page of any site must not be able to submit or cancel jobs through a visitor's browser.
@Suite("Cross-site requests and body types")
struct BrowserRequestTests {
    private static let job = #"{"kind":"write_code","input":{"name":"alex"}}"#

    private func expectProblem(_ response: TestHTTPClient.Response, status: Int, type: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(response.header("Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
        #expect(response.json["type"] as? String == "urn:jobpool:problem:\(type)", sourceLocation: sourceLocation)
        #expect(((response.json["detail"] as? String)?.count ?? 0) > 40, sourceLocation: sourceLocation)
    }

    private func jobCount(_ server: TestServer) async throws -> Int {
        (try await server.client.get("/v1/jobs").json["jobs"] as? [Any])?.count ?? -1
    }

    @Test("a cross-site browser request with an unsafe method is a 403 and creates nothing",
          arguments: [["Sec-Fetch-Site": "cross-site"], ["Sec-Fetch-Site": "same-site"],
                      ["Origin": "https://evil.example"], ["Origin": "null"],
                      ["Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1"]])
    func crossSiteRefused(headers: [String: String]) async throws {
        let server = try TestServer()
        defer { server.stop() }
        expectProblem(try await server.client.post("/v1/jobs", Self.job, headers: headers), status: 403, type: "cross-origin-request")
        expectProblem(try await server.client.post("/v1/jobs/batch", #"{"jobs":[\#(Self.job)]}"#, headers: headers),
                      status: 403, type: "cross-origin-request")
        #expect(try await jobCount(server) == 0)
        // Reading is safe: a cross-site GET is answered.
        #expect(try await server.client.get("/v1/jobs", headers: headers).status == 200)
    }

    @Test("same-origin, user-initiated and non-browser requests pass")
    func sameOriginPasses() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let origin = "http://127.0.0.1:\(server.port)"
        for headers in [["Sec-Fetch-Site": "same-origin"], ["Sec-Fetch-Site": "none"], ["Origin": origin],
                        ["Sec-Fetch-Site": "same-origin", "Origin": origin], [:]] {
            #expect(try await server.client.post("/v1/jobs", Self.job, headers: headers).status == 202, "\(headers)")
        }
        #expect(try await jobCount(server) == 5)
    }

    @Test("a body declared as anything but JSON is a 415 with Accept-Post",
          arguments: ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain",
                      "text/plain; charset=utf-8", "application/xml", "json"])
    func otherTypesRefused(contentType: String) async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.post("/v1/jobs", Self.job, headers: ["Content-Type": contentType])
        expectProblem(response, status: 415, type: "unsupported-media-type")
        #expect(response.header("Accept-Post") == "application/json")
        #expect(try await jobCount(server) == 0)
    }

    @Test("an empty Content-Type header is a declared type that is not JSON: 415")
    func emptyContentTypeRefused() async throws {
        let server = try TestServer()
        defer { server.stop() }
        // Over a raw socket: the test's HTTP client drops an empty header and sends a form type.
        let socket = try RawSocket(port: server.port)
        socket.write("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: \r\nContent-Length: \(Self.job.utf8.count)\r\n\r\n\(Self.job)")
        let reply = socket.read(until: "}", timeout: .seconds(5))
        #expect(reply.hasPrefix("HTTP/1.1 415"), "\(reply.prefix(120))")
        #expect(try await jobCount(server) == 0)
    }

    @Test("application/json, with parameters or in any case, and +json types are taken",
          arguments: ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"])
    func jsonTypesAccepted(contentType: String) async throws {
        let server = try TestServer()
        defer { server.stop() }
        #expect(try await server.client.post("/v1/jobs", Self.job, headers: ["Content-Type": contentType]).status == 202)
    }

    @Test("a body without Content-Type is read as JSON, and a declared type without a body is ignored")
    func undeclaredBody() async throws {
        let server = try TestServer()
        defer { server.stop() }
        // URLSession always declares a type for a body, so these go over a raw socket.
        let socket = try RawSocket(port: server.port)
        socket.write("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: \(Self.job.utf8.count)\r\n\r\n\(Self.job)")
        #expect(socket.read(until: "\r\n\r\n").hasPrefix("HTTP/1.1 202"))
        let id = try #require(try await server.client.get("/v1/jobs").json["jobs"] as? [[String: Any]]).first?["id"] as? String
        let cancel = try RawSocket(port: server.port)
        cancel.write("POST /v1/jobs/\(id ?? "")/cancel HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n")
        // 200, or 409 if the job has finished already: either way not 415.
        let answer = cancel.read(until: "\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200") || answer.hasPrefix("HTTP/1.1 409"), "\(answer.prefix(40))")
    }

    @Test("the media type check reads the essence before any parameter, blanks trimmed, in any case")
    func mediaTypeEdges() {
        for taken in ["application/json", " application/json ", "\tAPPLICATION/Json;charset=utf-8", "application/json ;x=y",
                      "application/merge-patch+json", "a/+json", "text/x+JSON"] {
            #expect(JSONMediaType.accepts(taken), "\(taken)")
        }
        for refused in ["", " ", "/", "json", "+json", "/+json", "application/", "/json", "application/jsonx",
                        "application/json/x", "application/x-json", "application/json+", "a/b/+json", ";application/json"] {
            #expect(!JSONMediaType.accepts(refused), "\(refused)")
        }
    }
}
