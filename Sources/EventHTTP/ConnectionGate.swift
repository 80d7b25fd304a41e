import CLibevent

/// Counts evhttp's open connections, pauses accepting at the limit, and tells streams when
/// their client goes away.
///
/// libevent 2.1 has no `evhttp_set_max_connections`, and the one close notification it offers,
/// `evhttp_connection_set_closecb`, needs the `evhttp_connection`, which does not exist yet
/// when `evhttp_set_bevcb` asks for a connection's bufferevent. So the gate makes that
/// bufferevent, holds one extra reference to it for a moment, and on the next loop turn (or
/// the next accept, whichever is first) finds the connection evhttp built around it (the
/// bufferevent's callback argument, checked with `evhttp_connection_get_bufferevent`), sets
/// the close callback, and lets go of the reference.
///
/// The reference must not be kept longer: a bufferevent that evhttp frees while someone
/// still holds it keeps its read event registered for the closed descriptor, and when the
/// kernel hands that descriptor number to the next client, the zombie wins the race for the
/// new client's bytes and swallows its request (a client then waited for ever; the fault
/// test caught it). Loop thread only.
///
/// The gate also keeps each connection's request deadline (see `ConnectionGate+Deadline.swift`):
/// a connection must bring its next whole request to the handler within `requestTimeout` of
/// its accept or of the end of its last reply, and at the limit the connection that has waited
/// longest for its next request is closed to make room.
final class ConnectionGate {
    let loop: EventLoop
    let maxConnections: Int
    let requestTimeout: Duration
    var openConnections = 0
    /// Adopted connections whose next request has not reached the handler yet, by deadline.
    /// These, and only these, may be closed by their deadline or to make room at the limit.
    var awaitingRequest = DeadlineQueue<OpaquePointer>()
    /// Connections that carry this gate's close callback, from adoption to their close. Only
    /// these may be armed: the close callback is what takes a connection out of
    /// `awaitingRequest` before evhttp frees it, so a connection without it (one that evhttp
    /// set up with a bufferevent of its own) must never be freed by a deadline.
    var tracked = Set<OpaquePointer>()
    /// Connections whose request is in the handler, from its arrival to the end of its reply.
    var inHandler = Set<OpaquePointer>()
    /// Run once when ``inHandler`` empties (see ``HTTPServer/whenRepliesSent(timeout:_:)``).
    var onIdle: (() -> Void)?
    var deadlineTimer: LoopTimer?
    /// Bufferevents made for connections whose close callback is not set yet (+1 each).
    private var unadopted: [OpaquePointer] = []
    private var adoptionTimer: LoopTimer?
    /// What to run when a connection closes (a streamed reply's client went away).
    private var closeObservers: [OpaquePointer: () -> Void] = [:]
    private var isPaused = false
    var listeners: [OpaquePointer] = []

    init(loop: EventLoop, maxConnections: Int, requestTimeout: Duration) {
        self.loop = loop
        self.maxConnections = max(1, maxConnections)
        self.requestTimeout = requestTimeout
    }

    func makeBufferEvent(base: OpaquePointer) -> OpaquePointer? {
        // The connections accepted before this one are complete now; adopting them first
        // also drops any that evhttp already freed before this client's events are added.
        adoptConnections()
        // No BEV_OPT_CLOSE_ON_FREE: evhttp closes an incoming connection's socket itself.
        guard let bufferEvent = bufferevent_socket_new(base, -1, 0) else { return nil }
        bufferevent_incref(bufferEvent)
        unadopted.append(bufferEvent)
        openConnections += 1
        // Accepting continues at the limit while some connection is still waiting for its next
        // request: the one that has waited longest makes room for this one.
        if openConnections > maxConnections { evictLongestWaiting() }
        updateListening()
        if adoptionTimer == nil {
            adoptionTimer = loop.schedule(after: .zero) { [unowned self] in
                adoptionTimer = nil
                adoptConnections()
            }
        }
        return bufferEvent
    }

    /// Runs `observer` once when `connection` closes, unless ``stopObserving(_:)`` comes first.
    func observeClose(of connection: OpaquePointer, _ observer: @escaping () -> Void) {
        adoptConnections()
        closeObservers[connection] = observer
    }

    func stopObserving(_ connection: OpaquePointer) {
        closeObservers[connection] = nil
    }

    /// Sets the close callback on the connection around each new bufferevent, and starts its
    /// request deadline.
    func adoptConnections() {
        guard !unadopted.isEmpty else { return }
        let context = Unmanaged.passUnretained(self).toOpaque()
        for bufferEvent in unadopted {
            if let connection = connection(around: bufferEvent) {
                evhttp_connection_set_closecb(connection, connectionGateClosedCallback, context)
                tracked.insert(connection)
                armDeadline(of: connection)
            } else {
                openConnections -= 1 // evhttp already gave up on it (it could not set it up)
            }
            bufferevent_decref(bufferEvent)
        }
        unadopted.removeAll(keepingCapacity: true)
        updateListening()
    }

    /// The live evhttp connection using `bufferEvent`, or nil if evhttp has freed it (freeing
    /// clears a bufferevent's callbacks, which a live connection never has cleared).
    private func connection(around bufferEvent: OpaquePointer) -> OpaquePointer? {
        var read: bufferevent_data_cb?
        var write: bufferevent_data_cb?
        var event: bufferevent_event_cb?
        var argument: UnsafeMutableRawPointer?
        bufferevent_getcb(bufferEvent, &read, &write, &event, &argument)
        guard read != nil || write != nil || event != nil, let argument else { return nil }
        let connection = OpaquePointer(argument)
        return evhttp_connection_get_bufferevent(connection) == bufferEvent ? connection : nil
    }

    fileprivate func connectionClosed(_ connection: OpaquePointer) {
        openConnections -= 1
        tracked.remove(connection)
        awaitingRequest.remove(connection)
        updateListening()
        closeObservers.removeValue(forKey: connection)?()
        replyEnded(on: connection)
    }

    /// `connection` has no request in the handler any more: its reply was written, or it closed.
    func replyEnded(on connection: OpaquePointer) {
        guard inHandler.remove(connection) != nil, inHandler.isEmpty, let onIdle else { return }
        self.onIdle = nil
        onIdle()
    }

    /// Called when the server goes away, after evhttp has freed its connections.
    func releaseAll() {
        adoptionTimer?.cancel()
        adoptionTimer = nil
        deadlineTimer?.cancel()
        deadlineTimer = nil
        awaitingRequest.removeAll()
        tracked.removeAll()
        inHandler.removeAll()
        onIdle = nil
        for bufferEvent in unadopted { bufferevent_decref(bufferEvent) }
        unadopted = []
        closeObservers = [:]
    }

    /// Accepts while below the limit, or at it while some connection may be evicted.
    func updateListening() {
        setPaused(openConnections >= maxConnections && awaitingRequest.isEmpty)
    }

    private func setPaused(_ paused: Bool) {
        guard paused != isPaused else { return }
        isPaused = paused
        for listener in listeners {
            if paused { evconnlistener_disable(listener) } else { evconnlistener_enable(listener) }
        }
    }
}

private func connectionGateClosedCallback(_ connection: OpaquePointer?, _ context: UnsafeMutableRawPointer?) {
    guard let connection, let context else { return }
    Unmanaged<ConnectionGate>.fromOpaque(context).takeUnretainedValue().connectionClosed(connection)
}
