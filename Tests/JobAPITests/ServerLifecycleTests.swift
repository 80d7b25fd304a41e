import Foundation
import OutboundHTTP
import Testing
import Synchronization

@Suite("Drain, connection limits and the echo service")
struct ServerLifecycleTests {
    @Test("shutdown drains: new submissions get 503, running jobs get the grace period, parked waiters their jobs' final states")
    func drain() async throws {
        let target = try HeldFetchTarget(pages: ["short"])
        defer { target.stop() }
        let server = try TestServer {
            $0.shutdownGrace = .seconds(8)
            $0.outbound.policy = AddressPolicy(allowed: [CIDR("127.0.0.2/32")!])
        }
        // The drain below stops it; this covers a path that leaves early (stopping is idempotent).
        defer { server.stop() }
        let client = server.client
        let long = try #require(try await client.submitWriteCode(min: 60, max: 60).json["id"] as? String)
        // Runs until the test releases its page, well within the grace period.
        let short = try #require(try await client.post("/v1/jobs", #"{"kind":"fetch_url","input":{"url":"\#(target.url("short"))"}}"#)
            .json["id"] as? String)
        #expect(try await eventually { try await client.get("/v1/jobs/\(long)").json["status"] as? String == "running" })
        #expect(try await eventually { target.requestCount == 1 })
        async let parkedOnLong = client.get("/v1/jobs/\(long)?wait=30")
        async let parkedOnShort = client.get("/v1/jobs/\(short)?wait=30")
        #expect(try await eventually { server.server.parkedRequests == 2 })

        let stopped = Mutex(false)
        Thread {
            server.stop()
            stopped.withLock { $0 = true }
        }.start()

        #expect(try await eventually { try await client.get("/readyz").status == 503 }, "not ready while draining")
        #expect((try await client.get("/readyz").json["detail"] as? String)?.contains("draining") == true)
        let refused = try await client.submitWriteCode()
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") != nil)
        #expect(try await client.get("/healthz").status == 200, "still alive while draining")
        // The waiter on the short job stays parked through the drain and gets its final state.
        target.release("short")
        let onShort = try await parkedOnShort
        #expect(onShort.status == 200)
        #expect(onShort.json["status"] as? String == "succeeded", "answered with the final state: \(onShort.json)")
        // Reads still work while draining, and the long job runs on.
        #expect(try await client.get("/v1/jobs/\(long)").json["status"] as? String == "running")
        // The grace period ends: the long job's waiter gets it as it stands, still running, just
        // before it is interrupted (with a durable store it runs again after the restart, so
        // "failed, interrupted" would mislead).
        let onLong = try await parkedOnLong
        #expect(onLong.status == 200)
        #expect(onLong.json["status"] as? String == "running", "\(onLong.json)")
        #expect(try await eventually(timeout: .seconds(12)) { stopped.withLock { $0 } })
    }

    @Test("a request still waiting when the drain ends gets its reply before the server stops")
    func lastRepliesLeave() async throws {
        let server = try TestServer()
        defer { server.stop() }
        // A scheduled job does not run in a drain, so its waiter is answered only as the drain
        // ends, on the loop turn that stops the loop: that reply must still be written.
        let submitted = try await server.client.post("/v1/jobs", #"{"kind":"write_code","delay_seconds":3600,"input":{"name":"later"}}"#)
        let id = try #require(submitted.json["id"] as? String, "\(submitted.text)")
        async let parked = server.client.get("/v1/jobs/\(id)?wait=30")
        #expect(try await eventually { server.server.parkedRequests == 1 })
        server.stop()
        let answer = try await parked
        #expect(answer.status == 200)
        #expect(answer.json["status"] as? String == "scheduled", "\(answer.json)")
    }

    @Test("readyz answers 200 while the server takes work")
    func ready() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let response = try await server.client.get("/readyz")
        #expect(response.status == 200)
        #expect(response.json["status"] as? String == "ready")
    }

    @Test("X-Request-Id is echoed when safe, and made up otherwise")
    func requestIDs() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let echoed = try await server.client.get("/healthz", headers: ["X-Request-Id": "trace-42.abc"])
        #expect(echoed.header("X-Request-Id") == "trace-42.abc")
        for unsafe in [String(repeating: "a", count: 129), "has space", "tab\there"] {
            let replaced = try await server.client.get("/healthz", headers: ["X-Request-Id": unsafe])
            let id = try #require(replaced.header("X-Request-Id"))
            #expect(id != unsafe && !id.isEmpty && id.count <= 40)
        }
        let first = try await server.client.get("/v1/jobs/nope").header("X-Request-Id")
        let second = try await server.client.get("/v1/jobs/nope").header("X-Request-Id")
        #expect(first != nil && first != second, "problem replies carry an ID too, a new one each time")
    }

    @Test("jobpool healthcheck exits 0 for a live server and 1 otherwise")
    func healthcheckCommand() throws {
        try Self.requireBinary()
        let server = try TestServer()
        defer { server.stop() }
        func run(_ arguments: [String]) throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = arguments
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(try run(["healthcheck", "--url", "http://127.0.0.1:\(server.port)/healthz"]) == 0)
        let closed = try FetchTargetServer()
        closed.stop()
        #expect(try run(["healthcheck", "--url", "http://127.0.0.2:\(closed.port)/healthz", "--timeout", "2"]) == 1)
    }

    @Test("--log-format json writes one JSON object per line, with an access-log line per request")
    func jsonLogs() async throws {
        try Self.requireBinary()
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("jobpool-log-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--port", "0", "--store", "memory", "--log-format", "json"]
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var text = ""
        let started = try await eventually {
            text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            return text.contains("listening on")
        }
        try #require(started, "the server did not log that it listens: \(text)")
        let port = try #require(text.firstMatch(of: /listening on http:\/\/127\.0\.0\.1:(\d+)/).map { String($0.1) })
        let client = TestHTTPClient(baseURL: "http://127.0.0.1:\(port)")
        _ = try await client.get("/healthz", headers: ["X-Request-Id": "log-test-1"])
        process.terminate() // SIGTERM: drains and exits 0
        // Poll rather than waitUntilExit(), which needs a run loop this async test does not have.
        #expect(try await eventually { !process.isRunning })
        #expect(process.terminationStatus == 0)
        let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 3)
        var accessLine: [String: Any]?
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
            #expect(object["time"] is String && object["level"] is String && object["message"] is String)
            if object["message"] as? String == "request" { accessLine = object }
        }
        let access = try #require(accessLine)
        #expect(access["request.id"] as? String == "log-test-1")
        #expect(access["route"] as? String == "/healthz")
        #expect(access["method"] as? String == "GET")
        #expect(access["status"] as? Int == 200, "a number, not a string")
        #expect(access["duration_ms"] is Double || access["duration_ms"] is Int, "a number, not a string")
    }

    /// The `jobpool` executable that `swift build` and `swift test` build beside the tests.
    static let binary = JobpoolProcess.binary

    /// Fails the test, loudly, when the executable is missing, rather than skipping it.
    static func requireBinary() throws {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "\(binary) is missing: run `swift build` first")
    }

    @Test("with --max-connections 2, hundreds of clients one after another are all served, however each leaves")
    func connectionsOneAfterAnother() throws {
        // Every way a connection ends must give its slot back, or the server stops accepting.
        // Each closed connection also frees its file descriptor for the next client: the gate
        // once kept freed bufferevents alive, whose read events stayed registered for the old
        // descriptor and could swallow the next client's request on the same number.
        // The durable store answers a submission from another thread, later, as in production.
        let server = try TestServer {
            $0.store = StoreKind.sqlite.makeStore()
            $0.http.maxConnections = 2
        }
        defer { server.stop() }
        let submit = #"{"kind":"write_code","input":{"name":"reuse","max_seconds":0}}"#
        let post = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(submit.utf8.count)\r\n"
        for round in 0..<300 {
            let socket = try RawSocket(port: server.port)
            switch round % 4 {
            case 0: // asks the server to close after the reply; reads it, then closes first
                socket.write(post + "Connection: close\r\n\r\n" + submit)
                let answer = socket.read(until: "\"webhook\"")
                try #require(answer.hasPrefix("HTTP/1.1 202"), "connection \(round) was not answered: \(answer.prefix(80))")
            case 1: // keep-alive: two requests, then the client closes
                for _ in 0..<2 {
                    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    let answer = socket.read(until: "ok")
                    try #require(answer.hasPrefix("HTTP/1.1 200"), "connection \(round) was not answered: \(answer.prefix(80))")
                }
            case 2: // a request libevent cannot parse: it answers 400 and closes
                socket.write("\u{01} nonsense\r\n\r\n")
                let answer = socket.read() // until the server closes
                try #require(answer.hasPrefix("HTTP/1.1 400") && socket.isClosedByPeer(within: .seconds(1)),
                             "connection \(round) was not refused and closed: \(answer.prefix(80))")
            default: // connects and leaves without a word
                break
            }
        }
        let last = try RawSocket(port: server.port)
        last.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(last.read(until: "ok").hasPrefix("HTTP/1.1 200"))
    }

    @Test("a server holding its --max-connections shuts down cleanly and closes those clients")
    func shutdownAtConnectionLimit() throws {
        let server = try TestServer { $0.http.maxConnections = 2 }
        let clients = [try RawSocket(port: server.port), try RawSocket(port: server.port)]
        for client in clients { // answered, so both are accepted and the gate has paused accepting
            client.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try #require(client.read(until: "ok").hasPrefix("HTTP/1.1 200"))
        }
        // Freeing the server closes the connections after their listeners are gone; their
        // close callbacks must not resume a freed listener.
        server.stop()
        for client in clients { #expect(client.isClosedByPeer(within: .seconds(5))) }
    }

    @Test("a request line libevent cannot parse gets libevent's error and the server lives on")
    func malformedRequest() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let socket = try RawSocket(port: server.port)
        socket.write("\u{01}\u{02} garbage\r\n\r\n")
        let reply = socket.read(until: "\r\n", timeout: .seconds(2))
        #expect(reply.hasPrefix("HTTP/1.1 400"), "libevent's reply: \(reply.prefix(80))")
        #expect(try await server.client.get("/healthz").status == 200)
    }

    @Test("echo: lines come back upper-cased (ASCII only); EOF closes cleanly")
    func echo() throws {
        let server = try TestServer { $0.echoPort = 0 }
        defer { server.stop() }
        let port = try #require(server.echoPort)
        let client = try RawSocket(port: port)
        client.write("hello, World é\nsecond")
        #expect(client.read(until: "\n") == "HELLO, WORLD é\n")
        client.shutdownWrite()
        #expect(client.read() == "SECOND")
        #expect(client.isClosedByPeer(within: .seconds(2)))
    }

    @Test("echo: idle clients starve no one, and a client that leaves is forgotten")
    func echoFairness() throws {
        let server = try TestServer { $0.echoPort = 0 }
        defer { server.stop() }
        let port = try #require(server.echoPort)
        // Two clients connect and send half a line each, then go quiet: the seed served them forever.
        let quiet = [try RawSocket(port: port), try RawSocket(port: port)]
        for client in quiet { client.write("partial line with no end") }
        let third = try RawSocket(port: port)
        third.write("ping\n")
        #expect(third.read(until: "\n", timeout: .seconds(2)) == "PING\n")
        // A client that disconnects abruptly leaves the server serving others normally.
        var leaving: RawSocket? = try RawSocket(port: port)
        leaving?.write("bye")
        leaving = nil
        for round in 0..<20 {
            third.write("round \(round)\n")
            #expect(third.read(until: "\n", timeout: .seconds(2)) == "ROUND \(round)\n")
        }
        _ = quiet
    }

    @Test("echo: a line over 64 KiB is refused and the connection closed")
    func echoLineCap() throws {
        let server = try TestServer { $0.echoPort = 0 }
        defer { server.stop() }
        let client = try RawSocket(port: try #require(server.echoPort))
        // Far more than the cap, still arriving when the server refuses: a plain close would
        // reset the connection and destroy the error line before the client read it.
        client.write([UInt8](repeating: UInt8(ascii: "a"), count: 4 << 20))
        #expect(client.read(until: "closing").contains("ERROR line longer than 65536 bytes"))
        #expect(client.isClosedByPeer(within: .seconds(4)))
        // A client that sends the long line and at once closes its side (a piped `nc`): its
        // end of file must not drop the error line before it is written.
        for _ in 0..<20 {
            let piped = try RawSocket(port: try #require(server.echoPort))
            piped.write([UInt8](repeating: UInt8(ascii: "b"), count: 70 * 1024))
            piped.shutdownWrite()
            #expect(piped.read(until: "closing").contains("ERROR line longer than 65536 bytes"))
        }
    }
}
