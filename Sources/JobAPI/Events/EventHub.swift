import EventHTTP
import Foundation
import JobCore

/// Serves every `GET /v1/events` stream from the loop thread.
///
/// Job changes reach it through ``JobChangeFeed``: producers only append, and the first change
/// of a batch wakes the loop once. A flush then numbers the batch into the ``ReplayWindow``,
/// renders each change at most once, builds one chunk per distinct filter, and writes it to
/// each stream: at most one write per stream per `flushInterval`, however fast jobs change.
/// A stream that falls more than `maxUnsentBytes` behind is sent a `reset` event and closed,
/// so a slow client costs at most that plus one batch; it reconnects and reloads.
///
/// ```swift
/// let hub = EventHub(loop: loop, feed: executor.changes, configuration: configuration.api)
/// hub.start()                                   // on the loop thread, before requests
/// hub.open(request, filter: filter, lastEventID: nil)
/// ```
final class EventHub {
    private final class Stream {
        let request: HTTPRequest
        let filter: EventFilter
        /// True when something was written since the last heartbeat tick.
        var isActive = false
        /// A `Last-Event-ID` newer than this node has read yet (another node sent it: the
        /// log's IDs are the whole cluster's). The stream's opening waits until this node has
        /// read that far, or for ``catchUpWait``, then a reset.
        var resumesAfter: Int?
        var catchUpTimer: LoopTimer?
        /// A new stream's start, ahead of what this node has read of the cluster's log (it
        /// reads the log only while something here needs it, and catches up when a stream
        /// opens): events up to it are not sent.
        var startsAfter: Int?

        init(request: HTTPRequest, filter: EventFilter) {
            self.request = request
            self.filter = filter
        }
    }

    private let loop: EventLoop
    private let feed: JobChangeFeed
    private let flushInterval: Duration
    private let heartbeatInterval: Duration
    let maxUnsentBytes: Int
    private var window: ReplayWindow
    private var streams: [Int: Stream] = [:]
    private var nextToken = 0
    /// The newest event every open stream has been sent (or judged not to want).
    private var flushedThrough: Int
    private var flushTimer: LoopTimer?
    private var lastFlush = ContinuousClock.now - .seconds(1)
    private var heartbeatTimer: LoopTimer?

    init(loop: EventLoop, feed: JobChangeFeed, configuration: APIConfiguration) {
        self.loop = loop
        self.feed = feed
        self.flushInterval = configuration.eventFlushInterval
        self.heartbeatInterval = configuration.eventStreamHeartbeat
        self.maxUnsentBytes = configuration.eventStreamMaxUnsentBytes
        // In process, IDs start from the clock; on a logged store, after the log's position.
        let firstID = feed.storedEventsStart.map { $0 + 1 } ?? Int(Date().timeIntervalSince1970 * 1000) * 1000
        self.window = ReplayWindow(capacity: configuration.eventReplayWindow, firstID: firstID)
        self.flushedThrough = window.newestID
    }

    /// Starts taking changes from the feed. Call once, on the loop thread or before it runs.
    func start() {
        let bound = LoopBound(self, on: loop)
        let loop = self.loop
        feed.replayCapacity = window.capacity
        feed.connect { loop.execute { bound.value.changesArrived() } }
    }

    var count: Int { streams.count }

    /// Opens a stream: a `reset` if `lastEventID` is outside the window, else the events after
    /// it; then a `ready` event carrying the ID it starts from; then live events.
    func open(_ request: HTTPRequest, filter: EventFilter, lastEventID: Int?) {
        // The new stream starts where the others stand (`flushedThrough`), or at the log's
        // settled end if this node has not read that far (below): the next flush, on the usual
        // schedule, brings it what came after, with everyone else's. (Flushing here instead
        // made every reconnect an extra write to every stream.)
        feed.streamOpening(at: flushedThrough)
        absorbPending()
        let start = flushedThrough
        let token = nextToken
        nextToken += 1
        let stream = Stream(request: request, filter: filter)
        streams[token] = stream
        request.startStream(status: 200, headers: [
            ("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no"),
        ]) { [unowned self] in
            close(token, ending: false) // the client went away
        }
        // This node reads the cluster's log only while something here needs it: a stream that
        // does not resume starts at the log's settled end, which the events that went by
        // unread lie behind (they are in the tables already; they still reach this node's
        // other readers, late).
        if feed.storedEventsStart != nil, lastEventID.map({ $0 < window.droppedThrough }) ?? true, feed.storedSettled > start {
            stream.startsAfter = feed.storedSettled
        }
        // Tell the client how soon to come back if the connection drops.
        var opening = Self.retryLine
        if let lastEventID {
            if lastEventID < window.droppedThrough {
                opening += resetEvent(reason: "Last-Event-ID \(lastEventID) is older than the replay window (the oldest event kept is \(window.oldestID)); reload, then follow from here.", id: stream.startsAfter ?? start)
            } else if lastEventID > start, feed.storedEventsStart != nil {
                // Another node may have sent it, and this one has not read that far yet: the
                // opening waits (flush sends it), or resets if the ID never comes.
                stream.resumesAfter = lastEventID
                stream.catchUpTimer = loop.schedule(after: Self.catchUpWait) { [unowned self] in
                    guard let stream = streams[token], stream.resumesAfter != nil else { return }
                    stream.resumesAfter = nil
                    // From the settled end if this node reads behind it (as a new stream).
                    if feed.storedSettled > flushedThrough { stream.startsAfter = feed.storedSettled }
                    let start = stream.startsAfter ?? flushedThrough
                    stream.request.sendChunk(Self.retryLine + resetEvent(
                        reason: "Last-Event-ID \(lastEventID) is not an event this server has sent, nor any node sharing its database; reload, then follow from here.",
                        id: start) + readyEvent(start))
                    publishNeed()
                }
                armHeartbeat()
                publishNeed()
                return
            } else if lastEventID > start {
                opening += resetEvent(reason: "Last-Event-ID \(lastEventID) is not an event this server has sent (it may have restarted); reload, then follow from here.", id: start)
            } else {
                opening += window.render(after: lastEventID, through: start, matching: filter)
            }
        }
        opening += readyEvent(stream.startsAfter ?? start)
        stream.request.sendChunk(opening)
        armHeartbeat()
        publishNeed()
        if window.newestID > flushedThrough { changesArrived() }
    }

    /// Tells the feed which events the open streams still need: those after the oldest of
    /// their positions (a store that logs events reads its log only while some are needed).
    private func publishNeed() {
        var oldest: Int?
        for stream in streams.values {
            let position = stream.resumesAfter ?? stream.startsAfter ?? flushedThrough
            oldest = min(oldest ?? position, position)
        }
        feed.streamsNeedEvents(after: oldest)
    }

    /// How long a stream opened with a `Last-Event-ID` ahead of this node's reading of the
    /// cluster's log waits for it (the log is read within milliseconds of a commit).
    static let catchUpWait = Duration.seconds(3)

    private static let retryLine = Array("retry: 2000\n\n".utf8)

    private func readyEvent(_ id: Int) -> [UInt8] {
        Array("id: \(id)\nevent: ready\ndata: {\"last_event_id\":\"\(id)\"}\n\n".utf8)
    }

    /// Ends every stream (a drain): clients reconnect with Last-Event-ID to another instance.
    func closeAll() {
        for token in streams.keys.sorted() { close(token, ending: true) }
        flushTimer?.cancel()
        flushTimer = nil
    }

    // MARK: - Flushing

    /// The feed's wake-up: flush now if the last flush is a whole interval ago, else when it is.
    private func changesArrived() {
        guard flushTimer == nil else { return }
        let due = lastFlush + flushInterval
        let now = ContinuousClock.now
        if due <= now {
            flush()
        } else {
            flushTimer = loop.schedule(after: due - now) { [unowned self] in
                flushTimer = nil
                flush()
            }
        }
    }

    /// Moves the feed's pending changes into the window.
    private func absorbPending() {
        for item in feed.take() {
            switch item {
            case .live(let change): window.append(change)
            case .stored(let event): window.append(event)
            case .skipped(let id): window.skip(through: id)
            }
        }
    }

    private func flush() {
        lastFlush = .now
        defer { publishNeed() } // the streams' positions moved on
        absorbPending()
        let from = flushedThrough
        flushedThrough = window.newestID
        guard !streams.isEmpty, from < window.newestID else { return }
        // A batch larger than the window has pushed out events no stream was sent yet.
        let lostSome = !window.canResume(after: from)
        // One copy of each filter's batch, which every stream with that filter refers to.
        var chunks: [EventFilter: SharedBytes] = [:]
        for token in streams.keys.sorted() {
            guard let stream = streams[token] else { continue }
            if let after = stream.resumesAfter {
                // Waiting to open: this node has now read as far as the client had.
                guard after <= window.newestID else { continue }
                stream.resumesAfter = nil
                stream.catchUpTimer?.cancel()
                let replay = window.canResume(after: after)
                    ? window.render(after: after, matching: stream.filter)
                    : resetEvent(reason: "More events arrived at once than the replay window holds; reload, then follow from here.")
                stream.request.sendChunk(Self.retryLine + replay + readyEvent(window.newestID))
                stream.isActive = true
                continue
            }
            if let after = stream.startsAfter {
                // Opened ahead of this node's reading: its first events are those after its start.
                guard after < window.newestID else { continue }
                stream.startsAfter = nil
                stream.request.sendChunk(window.canResume(after: after)
                    ? window.render(after: after, matching: stream.filter)
                    : resetEvent(reason: "More events arrived at once than the replay window holds; reload, then follow from here."))
                stream.isActive = true
                continue
            }
            if lostSome {
                stream.request.sendChunk(resetEvent(reason: "More events arrived at once than the replay window holds; reload, then follow from here."))
                stream.isActive = true
                continue
            }
            let chunk: SharedBytes
            if let rendered = chunks[stream.filter] {
                chunk = rendered
            } else {
                chunk = SharedBytes(window.render(after: from, matching: stream.filter))
                chunks[stream.filter] = chunk
            }
            guard chunk.count > 0 else { continue }
            // Behind means bytes from earlier flushes the client has not taken yet; a batch
            // larger than the limit still goes to a client that keeps up.
            if stream.request.unsentByteCount > maxUnsentBytes {
                stream.request.sendChunk(resetEvent(reason: "This stream fell more than \(maxUnsentBytes) bytes behind; reconnect with Last-Event-ID, or reload."))
                close(token, ending: true)
                continue
            }
            stream.request.sendChunk(chunk)
            stream.isActive = true
        }
    }

    /// `event: reset`, carrying the newest ID, so that a client reconnecting from it continues
    /// from here once it has reloaded.
    private func resetEvent(reason: String, id: Int? = nil) -> [UInt8] {
        let id = id ?? window.newestID
        var writer = JSONWriter()
        writer.object { members in
            members.member("reason") { $0.string(reason) }
            members.member("last_event_id") { $0.string(String(id)) }
        }
        return Array("id: \(id)\nevent: reset\ndata: ".utf8) + writer.bytes + Array("\n\n".utf8)
    }

    // MARK: - Heartbeats and closing

    /// One timer for all streams: each that was sent nothing for a whole interval gets a comment,
    /// which also lets libevent notice a client that went away.
    private func armHeartbeat() {
        guard heartbeatTimer == nil else { return }
        heartbeatTimer = loop.schedule(after: heartbeatInterval) { [unowned self] in
            heartbeatTimer = nil
            guard !streams.isEmpty else { return }
            for token in streams.keys.sorted() {
                guard let stream = streams[token] else { continue }
                if !stream.isActive { stream.request.sendChunk(Array(": heartbeat\n\n".utf8)) }
                stream.isActive = false
            }
            armHeartbeat()
        }
    }

    private func close(_ token: Int, ending: Bool) {
        guard let stream = streams.removeValue(forKey: token) else { return }
        publishNeed()
        stream.catchUpTimer?.cancel()
        if ending { stream.request.endStream() }
        if streams.isEmpty {
            heartbeatTimer?.cancel()
            heartbeatTimer = nil
        }
    }
}
