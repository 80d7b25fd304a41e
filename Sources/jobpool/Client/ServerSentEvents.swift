/// A Server-Sent Events stream parsed as its bytes arrive (the WHATWG `text/event-stream`
/// format): `id`, `event` and `data` fields make an event, a blank line sends it; comments
/// (`: heartbeat`) and `retry` are skipped.
///
/// ```swift
/// var parser = ServerSentEvents()
/// for event in parser.feed(chunk) { print(event.name, event.data) }
/// ```
struct ServerSentEvents {
    struct Event {
        var id: String?
        /// The `event` field; `message` when there is none.
        var name = "message"
        /// The `data` lines, joined by newlines.
        var data = ""
    }

    /// Bytes of a line that has not ended yet.
    private var partialLine: [UInt8] = []
    private var event = Event()
    private var hasData = false

    /// The events that `chunk` completes, in order.
    mutating func feed(_ chunk: UnsafeRawBufferPointer) -> [Event] {
        var events: [Event] = []
        for byte in chunk {
            guard byte == UInt8(ascii: "\n") else {
                partialLine.append(byte)
                continue
            }
            if partialLine.last == UInt8(ascii: "\r") { partialLine.removeLast() }
            if let complete = take(String(decoding: partialLine, as: UTF8.self)) { events.append(complete) }
            partialLine.removeAll(keepingCapacity: true)
        }
        return events
    }

    /// Reads one line; returns the event a blank line completes.
    private mutating func take(_ line: String) -> Event? {
        if line.isEmpty {
            defer { event = Event(); hasData = false }
            return hasData ? event : nil
        }
        if line.hasPrefix(":") { return nil }
        let field = line.prefix { $0 != ":" }
        var value = line.dropFirst(field.count).dropFirst()
        if value.hasPrefix(" ") { value = value.dropFirst() }
        switch field {
        case "id": event.id = String(value)
        case "event": event.name = String(value)
        case "data":
            event.data += hasData ? "\n" + value : String(value)
            hasData = true
        default: break
        }
        return nil
    }
}
