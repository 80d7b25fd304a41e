import EventHTTP
import JobCore

extension APIHandler {
    /// `GET /v1/jobs/{id}/events`: Server-Sent Events. The job's current state first, then each
    /// state change as it happens, a heartbeat comment while it is quiet, and the stream ends
    /// after the final state. Event IDs are the job's state sequence numbers, so a client that
    /// reconnects with `Last-Event-ID` gets only later states, never one twice.
    func streamEvents(_ request: HTTPRequest, id: String, owner: String?) throws(Problem) {
        let lastEventID = try Self.lastEventID(request) ?? 0
        try withJob(request, id: id, owner: owner) { handler, request, job throws(Problem) in
            try handler.openStream(request, job: job, after: lastEventID)
        }
    }

    private func openStream(_ request: HTTPRequest, job: Job, after lastEventID: Int) throws(Problem) {
        guard !isDraining else { throw Problem.shuttingDown }
        guard request.method != .head else {
            // HEAD sends no body, so there is no stream to hold open.
            request.respond(status: 200, headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])
            return
        }
        guard eventStreams.count + eventHub.count < eventStreams.limit else { throw Problem.tooManyWaiters(limit: eventStreams.limit) }
        eventStreams.open(request, job: job, after: lastEventID, heartbeat: configuration.eventStreamHeartbeat)
    }
}

/// The open event streams, on the loop thread. Each has a heartbeat timer and an observer on
/// its job that hands state changes to the loop through ``EventLoop/execute(_:)``.
final class EventStreams {
    private final class Stream {
        let request: HTTPRequest
        let job: Job
        var lastSent: Int
        var observer: Int?
        var heartbeat: LoopTimer?

        init(request: HTTPRequest, job: Job, lastSent: Int) {
            self.request = request
            self.job = job
            self.lastSent = lastSent
        }
    }

    private let loop: EventLoop
    private var streams: [Int: Stream] = [:]
    private var nextToken = 0
    let limit: Int

    init(loop: EventLoop, limit: Int) {
        self.loop = loop
        self.limit = limit
    }

    var count: Int { streams.count }
    var isFull: Bool { streams.count >= limit }

    func open(_ request: HTTPRequest, job: Job, after lastEventID: Int, heartbeat: Duration) {
        let token = nextToken
        nextToken += 1
        let stream = Stream(request: request, job: job, lastSent: lastEventID)
        streams[token] = stream
        request.startStream(status: 200, headers: [
            ("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no"),
        ]) { [unowned self] in
            close(token, ending: false) // the client went away
        }
        let table = LoopBound(self, on: loop)
        let loop = self.loop
        let (observer, current) = job.observe { snapshot in
            loop.execute { table.value.deliver(snapshot, to: token) }
        }
        stream.observer = observer
        // Tell the client how soon to come back if the connection drops.
        request.sendChunk(Array("retry: 2000\n\n".utf8))
        deliver(current, to: token)
        if streams[token] != nil { armHeartbeat(token, every: heartbeat) }
    }

    /// Ends every stream (a drain): clients reconnect with Last-Event-ID to another instance.
    func closeAll() {
        for token in streams.keys.sorted() { close(token, ending: true) }
    }

    private func deliver(_ snapshot: JobSnapshot, to token: Int) {
        guard let stream = streams[token] else { return }
        // Observers run outside the job's lock, so two changes may arrive out of order: the
        // sequence number drops a state older than one already sent.
        if snapshot.stateSequence > stream.lastSent {
            stream.lastSent = snapshot.stateSequence
            var writer = JSONWriter()
            writer.job(snapshot)
            var event = Array("id: \(snapshot.stateSequence)\nevent: \(snapshot.status.rawValue)\ndata: ".utf8)
            event += writer.bytes // JSON from JSONWriter has no raw newlines: one data line
            event += Array("\n\n".utf8)
            stream.request.sendChunk(event)
        }
        if snapshot.status.isFinished { close(token, ending: true) }
    }

    private func armHeartbeat(_ token: Int, every interval: Duration) {
        streams[token]?.heartbeat = loop.schedule(after: interval) { [unowned self] in
            guard let stream = streams[token] else { return }
            stream.request.sendChunk(Array(": heartbeat\n\n".utf8))
            armHeartbeat(token, every: interval)
        }
    }

    private func close(_ token: Int, ending: Bool) {
        guard let stream = streams.removeValue(forKey: token) else { return }
        stream.heartbeat?.cancel()
        if let observer = stream.observer { stream.job.removeObserver(observer) }
        if ending { stream.request.endStream() }
    }
}
