import Foundation
import Testing

/// `jobpool submit`, `get`, `wait`, `list`, `cancel` and `watch`: the real binary against a real
/// `jobpool serve` on port 0. What the server holds is checked with URLSession
/// (``TestHTTPClient``) and JSON with Foundation, neither of which the client shares.
@Suite("The command-line client", .serialized)
struct ClientCommandTests {
    /// A server on a free port, and its URL. Stop it with `defer { server.stop() }`.
    private static func startServer(_ flags: [String] = []) throws -> (JobpoolProcess, String) {
        let server = try JobpoolProcess(["serve", "--port", "0", "--store", "memory"] + flags)
        do {
            return (server, "http://127.0.0.1:\(try server.waitUntilListening())")
        } catch {
            server.stop()
            throw error
        }
    }

    private static func input(_ name: String, seconds: Double) -> String {
        #"{"name":"\#(name)","min_seconds":\#(seconds),"max_seconds":\#(seconds)}"#
    }

    @Test("the seed's sync call: submit --wait 10 prints the finished job and exits 0")
    func synchronousCall() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        let run = try await ClientRun.run(["submit", "write_code", "--input", #"{"name":"alex"}"#, "--wait", "10", "--url", url])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.lines.count == 1, "one document: \(run.stdout)")
        let job = try #require(run.documents.first ?? nil, "\(run.stdout)")
        #expect(job["status"] as? String == "succeeded")
        let result = try #require(job["result"] as? [String: Any])
        #expect(result["name"] as? String == "alex")
        #expect((5...10).contains(result["lines"] as? Int ?? 0), "\(result)")
    }

    @Test("ten submits without --wait print the queued jobs; wait on each prints it finished and exits 0")
    func asynchronousSubmitsThenWait() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        var ids: [String] = []
        for index in 0..<10 {
            let run = try await ClientRun.run(["submit", "write_code", "--input", Self.input("n\(index)", seconds: 0.5), "--url", url])
            #expect(run.status == 0, "\(run.output)")
            let job = try #require(run.documents.first ?? nil, "\(run.stdout)")
            #expect(["queued", "running"].contains(job["status"] as? String), "\(job)")
            ids.append(try #require(job["id"] as? String))
        }
        #expect(Set(ids).count == 10)
        for (index, id) in ids.enumerated() {
            let run = try await ClientRun.run(["wait", id, "--url", url])
            #expect(run.status == 0, "\(run.output)")
            let job = try #require(run.documents.first ?? nil, "\(run.stdout)")
            #expect(job["id"] as? String == id)
            #expect(job["status"] as? String == "succeeded")
            #expect((job["result"] as? [String: Any])?["name"] as? String == "n\(index)")
        }
    }

    @Test("list --all follows the cursor: every job once, each line the server's own document, byte for byte")
    func listAllPages() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        var ids: Set<String> = []
        for index in 0..<12 {
            // Brackets, braces, commas and escapes inside strings must not cut a job short.
            let name = index == 3 ? #"a]},{[\"\\ é"# : "p\(index)"
            let run = try await ClientRun.run(["submit", "-q", "write_code", "--input", Self.input(name, seconds: 0),
                                               "--wait", "10", "--url", url])
            #expect(run.status == 0, "\(run.output)")
            ids.insert(try #require(run.lines.first))
        }
        #expect(ids.count == 12)

        let all = try await ClientRun.run(["list", "--all", "--limit", "5", "--url", url])
        #expect(all.status == 0, "\(all.output)")
        let listed = all.documents.map { $0?["id"] as? String }
        #expect(listed.count == 12, "three pages of 5, 5 and 2 jobs, one a line: \(all.stdout)")
        #expect(Set(listed.compactMap { $0 }) == ids, "none missing, none repeated")
        let oracle = TestHTTPClient(baseURL: url)
        for line in all.lines {
            let id = try #require((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])["id"] as? String
            let served = try await oracle.get("/v1/jobs/\(id ?? "")").text
            #expect(line == served.trimmingCharacters(in: .newlines), "the job as GET /v1/jobs/{id} sends it")
        }

        let page = try await ClientRun.run(["list", "--limit", "5", "--url", url])
        #expect(page.status == 0)
        #expect(page.lines.count == 1, "without --all, one page as the API sent it")
        let document = try #require(page.documents.first ?? nil)
        #expect((document["jobs"] as? [Any])?.count == 5)
        #expect(document["next_cursor"] is String)

        let table = try await ClientRun.runInTerminal(["list", "--all", "--limit", "5", "--url", url])
        #expect(table.status == 0, "\(table.output)")
        #expect(table.lines.first?.hasPrefix("ID ") == true, "\(table.stdout)")
        #expect(table.lines.count == 13, "a header and twelve rows: \(table.stdout)")
        #expect(ids.allSatisfy { id in table.lines.contains { $0.hasPrefix(id + "  write_code  succeeded  ") } }, "\(table.stdout)")
    }

    @Test("cancel of a running job prints it cancelled and exits 0; then wait exits 3, and a second cancel 6")
    func cancelThenWait() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        let submitted = try await ClientRun.run(["submit", "-q", "write_code", "--input", Self.input("long", seconds: 60), "--url", url])
        let id = try #require(submitted.lines.first, "\(submitted.output)")
        let oracle = TestHTTPClient(baseURL: url)
        #expect(try await eventually { try await oracle.get("/v1/jobs/\(id)").json["status"] as? String == "running" })

        let cancel = try await ClientRun.run(["cancel", id, "--url", url])
        #expect(cancel.status == 0, "\(cancel.output)")
        #expect((cancel.documents.first ?? nil)?["status"] as? String == "cancelled", "\(cancel.stdout)")

        let wait = try await ClientRun.run(["wait", id, "--url", url])
        #expect(wait.status == 3, "\(wait.output)")
        #expect((wait.documents.first ?? nil)?["status"] as? String == "cancelled")

        let again = try await ClientRun.run(["cancel", id, "--url", url])
        #expect(again.status == 6, "a finished job cannot be cancelled: \(again.output)")
        #expect(again.stderr.contains("(409)"), "\(again.stderr)")
    }

    @Test("watch prints running, then succeeded: one line each, as text on a terminal and as the job's JSON elsewhere")
    func watch() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        var ids: [String] = []
        for name in ["seen", "piped"] {
            let run = try await ClientRun.run(["submit", "-q", "write_code", "--input", Self.input(name, seconds: 3), "--url", url])
            ids.append(try #require(run.lines.first, "\(run.output)"))
        }
        let (seen, piped) = (ids[0], ids[1])
        async let inTerminal = ClientRun.runInTerminal(["watch", seen, "--url", url])
        async let inPipe = ClientRun.run(["watch", piped, "--url", url])

        let text = try await inTerminal
        #expect(text.status == 0, "\(text.output)")
        let states = text.lines.map { String($0.prefix { $0 != " " }) }
        #expect(states.suffix(2) == ["running", "succeeded"], "\(text.stdout)")
        #expect(states.allSatisfy { ["queued", "running", "succeeded"].contains($0) }, "\(text.stdout)")
        #expect(text.lines.last?.contains(#"result: {"lines":"#) == true, "\(text.stdout)")

        let json = try await inPipe
        #expect(json.status == 0, "\(json.output)")
        let jobs = json.documents
        #expect(jobs.allSatisfy { $0?["id"] as? String == piped }, "every line is the job's JSON: \(json.stdout)")
        #expect(jobs.suffix(2).map { $0?["status"] as? String } == ["running", "succeeded"], "\(json.stdout)")
        #expect(((jobs.last ?? nil)?["result"] as? [String: Any])?["name"] as? String == "piped")
    }

    @Test("on a terminal the output is short text; --json prints the API's JSON there too")
    func humanOutput() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        let run = try await ClientRun.runInTerminal(["submit", "write_code", "--input", Self.input("alex", seconds: 0), "--wait", "10", "--url", url])
        #expect(run.status == 0, "\(run.output)")
        let head = try #require(run.lines.first)
        let match = head.wholeMatch(of: /([0-9a-f-]{36})  write_code  succeeded/)
        #expect(match != nil, "\(run.stdout)")
        #expect(run.lines.count == 2 && run.lines[1].hasPrefix(#"  result: {"lines":"#) && run.lines[1].contains(#""name":"alex""#),
                "\(run.stdout)")
        #expect((run.documents.first ?? nil) == nil, "not JSON on a terminal")

        let id = String(try #require(match).1)
        let get = try await ClientRun.runInTerminal(["get", id, "--url", url])
        #expect(get.lines.first == "\(id)  write_code  succeeded", "\(get.stdout)")

        let json = try await ClientRun.runInTerminal(["get", id, "--json", "--url", url])
        #expect(json.lines.count == 1)
        #expect((json.documents.first ?? nil)?["id"] as? String == id, "\(json.stdout)")
    }

    @Test("a bad input prints the problem's title, detail and field error on stderr, and exits 6")
    func badInput() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        let run = try await ClientRun.run(["submit", "write_code", "--input", #"{"name":5}"#, "--url", url])
        #expect(run.status == 6, "\(run.output)")
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.contains("Invalid request field (422): 'name' must be a string, not number."), "\(run.stderr)")
        #expect(run.stderr.contains("  /input/name: 'name' must be a string, not number."), "\(run.stderr)")
    }

    @Test("exit codes: 1 failed, 4 still running when the wait ends, 5 not found, 7 no server")
    func exitCodes() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        // The fetch guard refuses loopback, so this job fails at once, without a retry.
        let failed = try await ClientRun.run(["submit", "fetch_url", "--input", #"{"url":"http://127.0.0.1:9/"}"#, "--wait", "10", "--url", url])
        #expect(failed.status == 1, "\(failed.output)")
        #expect(((failed.documents.first ?? nil)?["error"] as? [String: Any])?["code"] as? String == "blocked_address")

        let slow = try await ClientRun.run(["submit", "write_code", "--input", Self.input("slow", seconds: 60), "--wait", "1", "--url", url])
        #expect(slow.status == 4, "\(slow.output)")
        #expect(slow.stderr.contains("has not finished"), "\(slow.stderr)")
        let id = try #require((slow.documents.first ?? nil)?["id"] as? String)
        let waited = try await ClientRun.run(["wait", id, "--timeout", "1", "--url", url])
        #expect(waited.status == 4, "\(waited.output)")
        #expect(try await ClientRun.run(["cancel", id, "--url", url]).status == 0)

        let missing = try await ClientRun.run(["get", UUID().uuidString.lowercased(), "--url", url])
        #expect(missing.status == 5, "\(missing.output)")
        #expect(missing.stderr.contains("Job not found (404)"), "\(missing.stderr)")

        server.stop()
        let unreachable = try await ClientRun.run(["list", "--url", url])
        #expect(unreachable.status == 7, "\(unreachable.output)")
        #expect(unreachable.stderr.contains("cannot connect to jobpool at \(url)"), "\(unreachable.stderr)")
        #expect(unreachable.stdout.isEmpty)
    }

    @Test("a 5xx exits 7 with the problem on stderr")
    func serverError() async throws {
        // With no room for waiting requests, the server answers ?wait=N on a running job with 503.
        let (server, url) = try Self.startServer(["--max-waiters", "0"])
        defer { server.stop() }
        let submitted = try await ClientRun.run(["submit", "-q", "write_code", "--input", Self.input("w", seconds: 30), "--url", url])
        let id = try #require(submitted.lines.first, "\(submitted.output)")
        let run = try await ClientRun.run(["wait", id, "--url", url])
        #expect(run.status == 7, "\(run.output)")
        #expect(run.stderr.contains("(503)"), "\(run.stderr)")
    }

    @Test("usage errors exit 64", arguments: [
        ["submit"],
        ["submit", "write_code", "extra"],
        ["submit", "write_code", "--input", "{}", "--input-file", "/dev/null"],
        ["submit", "write_code", "--input", "{"],
        ["wait", "some-id", "--timeout", "-1"],
        ["get", "some-id", "--url", "ftp://127.0.0.1/"],
    ])
    func usageErrors(arguments: [String]) async throws {
        // No server: a usage error is found before any request (one would exit 7).
        let run = try await ClientRun.run(arguments + (arguments.contains("--url") ? [] : ["--url", "http://127.0.0.1:9"]))
        #expect(run.status == 64, "\(run.output)")
    }

    @Test("the input comes from standard input with '-', or from --input-file")
    func inputSources() async throws {
        let (server, url) = try Self.startServer()
        defer { server.stop() }
        let piped = try await ClientRun.run(["submit", "write_code", "-", "--wait", "10", "--url", url], input: Self.input("stdin", seconds: 0))
        #expect(piped.status == 0, "\(piped.output)")
        #expect(((piped.documents.first ?? nil)?["result"] as? [String: Any])?["name"] as? String == "stdin")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("jobpool-input-\(UUID().uuidString).json")
        try Data(Self.input("file", seconds: 0).utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let fromFile = try await ClientRun.run(["submit", "write_code", "--input-file", file.path, "--wait", "10", "--url", url])
        #expect(((fromFile.documents.first ?? nil)?["result"] as? [String: Any])?["name"] as? String == "file", "\(fromFile.output)")
    }
}
