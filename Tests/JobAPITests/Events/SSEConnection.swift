import Foundation

/// A raw `GET /v1/events` connection and the events read from it so far, parsed here (not
/// with the server's code): `id:`, `event:`, `data:` lines, one event per blank line.
final class SSEConnection {
    struct Event {
        var id: Int?
        var name: String
        var data: [String: Any]
        var jobID: String? { (data["job"] as? [String: Any])?["id"] as? String }
    }

    let socket: RawSocket
    private(set) var text = ""
    /// Parsed so far; lines are parsed once, as they complete.
    private(set) var events: [Event] = []
    private var partialLine = ""
    private var current = Event(id: nil, name: "message", data: [:])
    private var hasData = false

    init(port: Int, query: String = "", lastEventID: Int? = nil, apiKey: String? = nil, receiveBuffer: Int32? = nil) throws {
        socket = try RawSocket(port: port, receiveBuffer: receiveBuffer)
        var request = "GET /v1/events\(query) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if let lastEventID { request += "Last-Event-ID: \(lastEventID)\r\n" }
        if let apiKey { request += "Authorization: Bearer \(apiKey)\r\n" }
        socket.write(request + "\r\n")
    }

    /// Reads until `done` holds for the events so far, or `timeout` passes. Returns the events.
    @discardableResult
    func read(timeout: Duration = .seconds(10), until done: ([Event]) -> Bool) async -> [Event] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !done(events), !isEnded {
            let more = await onThread { [socket] in socket.read(until: "\n\n", timeout: .milliseconds(200)) }
            text += more
            parse(more)
        }
        return events
    }

    /// True once the chunked reply has ended (the server closed the stream).
    var isEnded: Bool { text.hasSuffix("\r\n0\r\n\r\n") }

    /// The status line's code.
    var status: Int? { text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } }

    private func parse(_ more: String) {
        var lines = (partialLine + more).replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        partialLine = String(lines.removeLast()) // not complete yet
        // Chunk-size lines sit between chunks: only lines with a known field count.
        for line in lines {
            if line.isEmpty {
                if hasData { events.append(current) }
                current = Event(id: nil, name: "message", data: [:])
                hasData = false
            } else if line.hasPrefix("id: ") {
                current.id = Int(line.dropFirst(4))
            } else if line.hasPrefix("event: ") {
                current.name = String(line.dropFirst(7))
            } else if line.hasPrefix("data: ") {
                current.data = (try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8))) as? [String: Any] ?? [:]
                hasData = true
            }
        }
    }

    /// The job events (not `ready`/`reset`).
    var jobEvents: [Event] { events.filter { $0.name.hasPrefix("job.") || $0.name.hasPrefix("webhook.") } }
}
