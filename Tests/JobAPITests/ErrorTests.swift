import Foundation
import Testing

@Suite("Errors are problem+json and lose nothing")
struct ErrorTests {
    private func expectProblem(_ response: TestHTTPClient.Response, status: Int, pointer: String? = nil,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(response.header("Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
        let problem = response.json
        #expect(problem["status"] as? Int == status, sourceLocation: sourceLocation)
        #expect((problem["type"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect((problem["title"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(((problem["detail"] as? String)?.count ?? 0) > 10, sourceLocation: sourceLocation)
        if let pointer {
            let errors = problem["errors"] as? [[String: Any]]
            #expect(errors?.first?["pointer"] as? String == pointer, sourceLocation: sourceLocation)
        }
    }

    @Test("a member name sent twice is refused with 422 naming it (I-JSON), at any depth", arguments: [
        (#"{"kind":"write_code","kind":"fetch_url","input":{"name":"a"}}"#, "/kind"),
        (#"{"kind":"write_code","input":{"name":"a","name":"b"}}"#, "/input/name"),
        (#"{"kind":"fetch_url","input":{"url":"http://x.test/","headers":[{"a":1,"a":2}]}}"#, "/input/headers/0/a"),
        (#"{"kind":"write_code","input":{"name":"a"},"webhook":{"url":"https://x.test/","url":"http://127.0.0.1/"}}"#, "/webhook/url"),
    ])
    func duplicateMembers(body: String, pointer: String) async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.post("/v1/jobs", body)
        expectProblem(response, status: 422, pointer: pointer)
        #expect((response.json["detail"] as? String)?.contains("more than once") == true)
        #expect((try await server.client.get("/v1/jobs").json["jobs"] as? [Any])?.isEmpty == true)
    }

    @Test("an unknown query parameter is a 400 naming it and listing the valid ones")
    func unknownQueryParameters() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let misspelt = try await server.client.get("/v1/jobs?staus=failed")
        expectProblem(misspelt, status: 400)
        let errors = misspelt.json["errors"] as? [[String: Any]]
        #expect(errors?.first?["parameter"] as? String == "staus")
        #expect((misspelt.json["detail"] as? String)?.contains("'status'") == true)
        #expect(try await server.client.get("/v1/jobs?status=failed&limit=5").status == 200)
    }

    @Test("run_at must be a real RFC 3339 time", arguments: [
        "-001-01-01T00:00:00Z", "2026-12-01T09:30:00+99:99", "2026-02-30T00:00:00Z", "2026-12-01T24:00:00Z",
        "2026-12-01 09:30:00Z", "2026-12-01T09:30:00", "2026-12-01T09:30:00.Z", "20261201T093000Z", "2026-13-01T00:00:00Z",
    ])
    func impossibleRunAt(text: String) async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.post("/v1/jobs", #"{"kind":"write_code","input":{"name":"a"},"run_at":"\#(text)"}"#)
        expectProblem(response, status: 422, pointer: "/run_at")
    }

    @Test("bad bodies: 400 for non-JSON, 422 naming the field, 422 listing known kinds")
    func badBodies() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let client = server.client
        expectProblem(try await client.post("/v1/jobs", "{not json"), status: 400)
        expectProblem(try await client.post("/v1/jobs", ""), status: 400)
        expectProblem(try await client.post("/v1/jobs", "[1,2]"), status: 422, pointer: "")
        expectProblem(try await client.post("/v1/jobs", #"{"input":{"name":"a"}}"#), status: 422, pointer: "/kind")
        expectProblem(try await client.post("/v1/jobs", #"{"kind":7,"input":{}}"#), status: 422, pointer: "/kind")
        expectProblem(try await client.post("/v1/jobs", #"{"kind":"write_code"}"#), status: 422, pointer: "/input")
        expectProblem(try await client.post("/v1/jobs", #"{"kind":"write_code","input":{"name":3}}"#), status: 422, pointer: "/input/name")
        expectProblem(try await client.post("/v1/jobs", #"{"kind":"write_code","input":{"name":"a"},"colour":1}"#), status: 422, pointer: "/colour")
        let unknownKind = try await client.post("/v1/jobs", #"{"kind":"bake_bread","input":{}}"#)
        expectProblem(unknownKind, status: 422, pointer: "/kind")
        #expect((unknownKind.json["detail"] as? String)?.contains("write_code") == true)
        let list = try await client.get("/v1/jobs?limit=500")
        #expect((list.json["jobs"] as? [Any])?.isEmpty == true, "no bad request created a job")
    }

    @Test("a body over 1 MiB is a 413 problem")
    func bodyTooLarge() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let name = String(repeating: "x", count: 1024 * 1024 + 10)
        let response = try await server.client.post("/v1/jobs", #"{"kind":"write_code","input":{"name":"\#(name)"}}"#)
        expectProblem(response, status: 413)
    }

    @Test("wrong method is 405 with Allow; unknown path and unknown job are 404")
    func routing() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let client = server.client
        let wrongMethod = try await client.send("DELETE", "/v1/jobs")
        expectProblem(wrongMethod, status: 405)
        #expect(wrongMethod.header("Allow") == "GET, POST")
        let patch = try await client.send("PATCH", "/v1/jobs/00000000-0000-4000-8000-000000000000", body: "{}")
        expectProblem(patch, status: 405)
        #expect(patch.header("Allow") == "GET")
        expectProblem(try await client.get("/v2/jobs"), status: 404)
        expectProblem(try await client.get("/v1/jobs/00000000-0000-4000-8000-000000000000"), status: 404)
        expectProblem(try await client.get("/v1/jobs/not-a-uuid"), status: 404)
        expectProblem(try await client.post("/v1/jobs/00000000-0000-4000-8000-000000000000/cancel"), status: 404)
        #expect(try await client.get("/healthz").status == 200)
    }

    @Test("bad query parameters are 400 problems naming the parameter")
    func badQuery() async throws {
        let server = try TestServer()
        defer { server.stop() }
        for query in ["status=done", "kind=nope", "limit=0", "limit=501", "limit=x", "cursor=garbage"] {
            let response = try await server.client.get("/v1/jobs?\(query)")
            expectProblem(response, status: 400)
            let parameter = String(query.prefix { $0 != "=" })
            #expect((response.json["errors"] as? [[String: Any]])?.first?["parameter"] as? String == parameter)
        }
        let id = try #require(try await server.client.submitWriteCode().json["id"] as? String)
        expectProblem(try await server.client.get("/v1/jobs/\(id)?wait=61"), status: 400)
    }

    @Test("a full queue is 429 with Retry-After, and the refused job does not exist")
    func queueFull() async throws {
        let server = try TestServer {
            $0.executor.workers = 1
            $0.executor.maxQueued = 1
        }
        defer { server.stop() }
        let client = server.client
        let running = try #require(try await client.submitWriteCode(min: 30, max: 30).json["id"] as? String)
        #expect(try await eventually { try await client.get("/v1/jobs/\(running)").json["status"] as? String == "running" })
        #expect(try await client.submitWriteCode(min: 30, max: 30).status == 202)
        let refused = try await client.submitWriteCode(min: 30, max: 30)
        expectProblem(refused, status: 429)
        #expect(refused.header("Retry-After") != nil)
        #expect((try await client.get("/v1/jobs?limit=500").json["jobs"] as? [Any])?.count == 2)
        for job in try await client.get("/v1/jobs").json["jobs"] as? [[String: Any]] ?? [] {
            _ = try await client.post("/v1/jobs/\(job["id"] as? String ?? "")/cancel")
        }
    }

    @Test("one waiter over --max-waiters is a 503 with Retry-After, before any job is created")
    func tooManyWaiters() async throws {
        let server = try TestServer { $0.api.maxWaiters = 1 }
        defer { server.stop() }
        let client = server.client
        let id = try #require(try await client.submitWriteCode(min: 30, max: 30).json["id"] as? String)
        async let parked = client.get("/v1/jobs/\(id)?wait=3")
        #expect(try await eventually { server.server.parkedRequests == 1 })
        let refused = try await client.submitWriteCode(headers: ["Prefer": "wait=5"])
        expectProblem(refused, status: 503)
        #expect(refused.header("Retry-After") != nil)
        #expect((try await client.get("/v1/jobs").json["jobs"] as? [Any])?.count == 1)
        #expect(try await parked.status == 200)
        _ = try await client.post("/v1/jobs/\(id)/cancel")
    }
}

@Suite("Undeclared methods")
struct UndeclaredMethodTests {
    @Test("methods a path does not declare, even ones libevent does not know, get 405 problem+json with Allow")
    func undeclaredMethods() async throws {
        let server = try TestServer()
        defer { server.stop() }
        for (method, path, allow) in [("PUT", "/v1/jobs", "GET, POST"), ("DELETE", "/v1/stats", "GET"),
                                      ("QUERY", "/v1/jobs/batch", "POST"), ("PATCH", "/openapi.yaml", "GET")] {
            let response = try await server.client.send(method, path)
            #expect(response.status == 405, "\(method) \(path)")
            #expect(response.header("Allow") == allow, "\(method) \(path)")
            #expect(response.header("Content-Type") == "application/problem+json")
        }
        #expect(try await server.client.send("QUERY", "/nowhere").status == 404)
        // GET /v1/jobs/batch is not a job: the literal path wins, so GET is not allowed there.
        #expect(try await server.client.get("/v1/jobs/batch").status == 405)
    }
}
