import Foundation
import Testing

@Suite("Live events (SSE)")
struct EventStreamTests {
    /// The events in a raw HTTP response: (id, event name) pairs, in order.
    private func events(in text: String) -> [(id: Int, event: String)] {
        var found: [(Int, String)] = []
        var id: Int?
        // "\r\n" is one Character in Swift: make every line end in "\n" before splitting.
        for line in text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("id: ") { id = Int(line.dropFirst(4)) }
            if line.hasPrefix("event: "), let current = id { found.append((current, String(line.dropFirst(7)))) }
        }
        return found
    }

    private func openStream(port: Int, path: String, lastEventID: Int? = nil) throws -> RawSocket {
        let socket = try RawSocket(port: port)
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
        socket.write(request + "\r\n")
        return socket
    }

    @Test("each state change as it happens, heartbeats, the end after the final state, and a reconnect that repeats nothing")
    func streamAndReconnect() async throws {
        let server = try TestServer { $0.api.eventStreamHeartbeat = .milliseconds(100) }
        defer { server.stop() }
        // Long enough that the reconnect below comes while it still runs, even on a loaded machine.
        let submitted = try await server.client.submitWriteCode(name: "streamed", min: 5, max: 5)
        let path = try #require(submitted.header("Location")) + "/events"
        let port = server.port

        let first = try openStream(port: port, path: path)
        let beforeDrop = await onThread { first.read(until: "event: running") }
        #expect(beforeDrop.contains("200 OK"))
        #expect(beforeDrop.lowercased().contains("content-type: text/event-stream"))
        let seen = events(in: beforeDrop)
        #expect(seen.last?.event == "running")
        let lastID = try #require(seen.last?.id)
        first.disconnect() // the client drops the connection mid-stream

        let second = try openStream(port: port, path: path, lastEventID: lastID)
        let rest = await onThread { second.read(until: "\r\n0\r\n\r\n", timeout: .seconds(10)) }
        let resumed = events(in: rest)
        #expect(resumed.map(\.event) == ["succeeded"])
        #expect(resumed.allSatisfy { $0.id > lastID })
        #expect(rest.contains(": heartbeat"))
        #expect(rest.contains("\r\n0\r\n\r\n")) // the chunked stream ended after the final event
        #expect(rest.contains(#""result":{"#))
    }

    @Test("a finished job's stream sends its final state once and ends; unknown jobs are 404")
    func finishedJob() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let done = try await server.client.post("/v1/jobs", #"{"kind":"write_code","input":{"name":"x","max_seconds":0}}"#,
                                                headers: ["Prefer": "wait=10"])
        let path = try #require(done.header("Location")) + "/events"
        let stream = try openStream(port: server.port, path: path)
        let text = await onThread { stream.read(until: "\r\n0\r\n\r\n") }
        #expect(events(in: text).map(\.event) == ["succeeded"])
        let finalID = try #require(events(in: text).last?.id)
        // Reconnecting after the final event yields no event again.
        let again = try openStream(port: server.port, path: path, lastEventID: finalID)
        let none = await onThread { again.read(until: "\r\n0\r\n\r\n") }
        #expect(events(in: none).isEmpty)
        #expect(try await server.client.get("/v1/jobs/00000000-0000-4000-8000-000000000000/events").status == 404)
        #expect(try await server.client.get(path, headers: ["Last-Event-ID": "abc"]).status == 400)
        // HEAD answers at once even for a job that will not change for an hour.
        let waiting = try await server.client.post("/v1/jobs", #"{"kind":"write_code","delay_seconds":3600,"input":{"name":"later"}}"#)
        let head = try await server.client.send("HEAD", try #require(waiting.header("Location")) + "/events")
        #expect(head.status == 200)
        #expect(head.header("Content-Type") == "text/event-stream")
    }
}
