import Foundation
import Glibc
import JobCore
import Synchronization
import Testing

/// Slow, idle and numerous clients: request deadlines, eviction at the connection limit, the
/// listen backlog and TCP_NODELAY. Every client here is a raw socket to 127.0.0.1, so that the
/// test controls exactly which connections exist.
@Suite("Connection defences: slowloris, limit, backlog, TCP_NODELAY")
struct ConnectionDefenceTests {
    private static let health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    /// A server with this connection limit and one worker, and a job (made without HTTP) that
    /// holds that worker until cancelled. Stop the server with `defer`.
    private func serverWithLongJob(maxConnections: Int) throws -> (TestServer, Job) {
        let server = try TestServer {
            // The memory store answers a submit at once, so the executor hands the job back here.
            $0.store = .memory
            $0.http.maxConnections = maxConnections
            $0.executor.workers = 1
        }
        do {
            let job = try #require(try server.server.executor.submit(kind: "write_code", input: .object([
                "name": .string("long"), "min_seconds": .integer(60), "max_seconds": .integer(60),
            ])) { _ in })
            return (server, job)
        } catch {
            server.stop()
            throw error
        }
    }

    /// A raw client parked in the handler: waiting for `job` to finish.
    private func parkedWaiter(_ server: TestServer, on job: Job, expectedParked: Int) async throws -> RawSocket {
        let socket = try RawSocket(port: server.port)
        socket.write("GET /v1/jobs/\(job.id)?wait=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await eventually(timeout: .seconds(5)) { server.server.parkedRequests == expectedParked })
        return socket
    }

    /// A connection that was answered once and now sits idle, kept alive.
    private func idleKeptAlive(_ server: TestServer) throws -> RawSocket {
        let socket = try RawSocket(port: server.port)
        socket.write(Self.health)
        try #require(socket.read(until: "ok").hasPrefix("HTTP/1.1 200"))
        return socket
    }

    @Test("a client trickling its request head a byte at a time is closed at the request deadline")
    func trickleIsCut() async throws {
        let server = try TestServer { $0.http.requestTimeout = .seconds(1) }
        defer { server.stop() }
        let started = ContinuousClock.now
        let closedAfter: Duration? = await onThread {
            guard let socket = try? RawSocket(port: server.port) else { return nil }
            socket.write("GET /healthz HTTP/1.1\r\n")
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                socket.write("X")                       // one byte, every 100 ms
                if socket.isClosedByPeer(within: .milliseconds(100)) { return ContinuousClock.now - started }
            }
            return nil
        }
        let elapsed = try #require(closedAfter, "the trickling connection was never closed")
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(3), "closed after \(elapsed)")
        // The server is fine afterwards.
        let next = try RawSocket(port: server.port)
        next.write(Self.health)
        #expect(next.read(until: "ok").hasPrefix("HTTP/1.1 200"))
    }

    @Test("a kept-alive connection gets a new deadline after each reply; a quiet one is closed at it")
    func keptAliveDeadline() async throws {
        let server = try TestServer { $0.http.requestTimeout = .seconds(3) }
        defer { server.stop() }
        let socket = try idleKeptAlive(server)
        // On a thread of its own, so that the pauses are what they say on a loaded machine too:
        // four requests 1 s apart span past one deadline, then silence runs into the next.
        let answers = await onThread {
            (0..<4).map { _ in
                Thread.sleep(forTimeInterval: 1)
                socket.write(Self.health)
                return socket.read(until: #""ok"}"#).hasPrefix("HTTP/1.1 200")
            }
        }
        #expect(answers == [true, true, true, true])
        #expect(await onThread { socket.isClosedByPeer(within: .seconds(6)) })
    }

    @Test("at the limit, trickling clients make room for normal requests, which are all answered within 2 s")
    func slowlorisAtTheLimit() async throws {
        // More attackers than the limit, but fewer extra ones than the limit: a normal client is
        // then never evicted by one burst of accepts before its request is read (see the README).
        let limit = 48
        let server = try TestServer {
            $0.http.maxConnections = limit
            $0.http.requestTimeout = .seconds(20) // room is made by eviction, not by the deadline
        }
        defer { server.stop() }
        let stop = Mutex(false)
        let attackersEnded = DispatchSemaphore(value: 0)
        // limit + 24 attackers, one header byte each every 200 ms, reconnecting when dropped.
        let attackers = Thread {
            defer { attackersEnded.signal() }
            var sockets = (0..<(limit + 24)).compactMap { _ in try? RawSocket(port: server.port) }
            for socket in sockets { socket.write("POST /v1/jobs HTTP/1.1\r\n") }
            while !stop.withLock({ $0 }) {
                for index in sockets.indices {
                    if sockets[index].isClosedByPeer(within: .zero), let fresh = try? RawSocket(port: server.port) {
                        fresh.write("POST /v1/jobs HTTP/1.1\r\n")
                        sockets[index] = fresh
                    }
                    sockets[index].write("X")
                }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        attackers.start()
        defer { // before the server stops: the attackers end, and close their sockets, first
            stop.withLock { $0 = true }
            attackersEnded.wait()
        }
        try await Task.sleep(for: .milliseconds(500)) // the attack holds every slot
        let answeredInTime = await onThread {
            (0..<20).count { _ in
                guard let socket = try? RawSocket(port: server.port) else { return false }
                socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return socket.read(until: "ok", timeout: .seconds(2)).hasPrefix("HTTP/1.1 200")
            }
        }
        #expect(answeredInTime == 20)
    }

    @Test("at the limit, the connection idle longest is closed for a new one; parked waiters never are")
    func evictionOrder() async throws {
        let (server, job) = try serverWithLongJob(maxConnections: 3)
        defer { server.stop() }
        let waiter = try await parkedWaiter(server, on: job, expectedParked: 1)
        let oldest = try idleKeptAlive(server)
        let newer = try idleKeptAlive(server)
        // A fourth client: the limit is 3, so the idle connection that has waited longest goes.
        let fourth = try idleKeptAlive(server)
        #expect(await onThread { oldest.isClosedByPeer(within: .seconds(2)) })
        #expect(!newer.isClosedByPeer(within: .milliseconds(100)))
        // More clients churn through the idle slots; the waiter keeps its connection.
        for _ in 0..<5 { _ = try idleKeptAlive(server) }
        _ = fourth
        #expect(!waiter.isClosedByPeer(within: .milliseconds(100)))
        #expect(job.cancel() != .alreadyFinished(.succeeded))
        #expect(await onThread { waiter.read(until: "\"cancelled\"").hasPrefix("HTTP/1.1 200") })
    }

    @Test("when every connection has a request in the handler, further clients wait until one ends")
    func limitHoldsWhenNothingIsEvictable() async throws {
        let (server, job) = try serverWithLongJob(maxConnections: 2)
        defer { server.stop() }
        let waiters = [try await parkedWaiter(server, on: job, expectedParked: 1),
                       try await parkedWaiter(server, on: job, expectedParked: 2)]
        let third = try RawSocket(port: server.port) // the kernel completes the handshake; evhttp must not serve it
        third.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(await onThread { third.read(until: "\r\n\r\n", timeout: .milliseconds(700)) }.isEmpty)
        _ = job.cancel() // both waiters are answered; their connections then await a request and may be evicted
        #expect(await onThread { third.read(until: "ok", timeout: .seconds(5)) }.hasPrefix("HTTP/1.1 200"))
        _ = waiters
    }

    @Test("a request in the handler outlives the deadline: a parked wait and an event stream keep their connections")
    func handlerRequestsHaveNoDeadline() async throws {
        let server = try TestServer { $0.http.requestTimeout = .seconds(1) }
        defer { server.stop() }
        // A job that outlasts the test, so that no step depends on how fast a loaded machine is.
        let id = try #require(try await server.client.submitWriteCode(min: 60, max: 60).json["id"] as? String)
        let stream = try RawSocket(port: server.port)
        stream.write("GET /v1/jobs/\(id)/events HTTP/1.1\r\nHost: x\r\n\r\n")
        let opened = await onThread { stream.read(until: "retry: ", timeout: .seconds(10)) }
        #expect(opened.hasPrefix("HTTP/1.1 200"), "\(opened.prefix(200))")
        // A wait of 3 s on a 1 s deadline: the gate must not free a request Swift still holds.
        let waiter = try RawSocket(port: server.port)
        waiter.write("GET /v1/jobs/\(id)?wait=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        let answered = await onThread { waiter.read(until: "\"running\"", timeout: .seconds(10)) }
        #expect(answered.hasPrefix("HTTP/1.1 200") && answered.contains("\"running\""), "\(answered.prefix(200))")
        // The stream, open for longer than the deadline by now, still carries the job's end.
        _ = try await server.client.post("/v1/jobs/\(id)/cancel")
        let streamed = await onThread { stream.read(until: "event: cancelled", timeout: .seconds(10)) }
        #expect(streamed.contains("event: cancelled"), "\(streamed.prefix(300))")
    }

    @Test("the listen backlog is the system's maximum, not 128: 300 clients queue while the server is full")
    func listenBacklog() async throws {
        // A kernel that caps the accept queue below 300 cannot show it; say so rather than fail.
        let somaxconn = (try? String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        try #require(somaxconn > 300, "net.core.somaxconn is \(somaxconn): this machine cannot queue 300 connections")
        let (server, job) = try serverWithLongJob(maxConnections: 1)
        defer { server.stop() }
        let waiter = try await parkedWaiter(server, on: job, expectedParked: 1) // holds the only slot
        let completed = await onThread { Self.completedConnects(port: server.port, count: 300, within: .seconds(3)) }
        #expect(completed == 300, "only \(completed) of 300 handshakes completed: the accept queue is too short")
        _ = job.cancel()
        _ = waiter
    }

    /// Starts `count` non-blocking connects and counts those whose handshake completes in time
    /// (a full accept queue drops the SYN, and the client retries only after a second).
    private static func completedConnects(port: Int, count: Int, within timeout: Duration) -> Int {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var descriptors: [pollfd] = []
        defer { for entry in descriptors { close(entry.fd) } }
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { break }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            descriptors.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0))
        }
        var done = Set<Int32>()
        let deadline = ContinuousClock.now + timeout
        while done.count < descriptors.count, ContinuousClock.now < deadline {
            let pending = descriptors.filter { !done.contains($0.fd) }
            var polled = pending
            guard poll(&polled, nfds_t(polled.count), 50) >= 0 else { break }
            for entry in polled where entry.revents & Int16(POLLOUT) != 0 {
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(entry.fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error == 0 { done.insert(entry.fd) }
            }
        }
        return done.count
    }

    @Test("accepted connections have TCP_NODELAY, so a kept-alive reply does not wait for a delayed ACK")
    func noDelay() throws {
        let server = try TestServer()
        defer { server.stop() }
        let client = try idleKeptAlive(server)
        // The server runs in this process: find its end of the connection by the peer address.
        var clientAddress = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &clientAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client.fd, $0, &length) }
        }
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { Int32($0) }
        let serverSide = descriptors.first { fd in
            var peer = sockaddr_in()
            var peerLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let result = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &peerLength) }
            }
            return result == 0 && fd != client.fd && peer.sin_family == sa_family_t(AF_INET)
                && peer.sin_port == clientAddress.sin_port && peer.sin_addr.s_addr == clientAddress.sin_addr.s_addr
        }
        let fd = try #require(serverSide, "the server's end of the connection was not found")
        var noDelay: Int32 = 0
        var optionLength = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, &optionLength) == 0)
        #expect(noDelay == 1)
    }
}
