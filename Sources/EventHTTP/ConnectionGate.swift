import CLibevent

/// Counts evhttp's open connections and pauses accepting at the limit.
///
/// libevent 2.1 has no `evhttp_set_max_connections` and does not tell the application when a
/// connection closes. What it does offer is `evhttp_set_bevcb`, called once per accepted
/// connection to make its bufferevent. The gate makes that bufferevent, keeps one extra
/// reference to it, and later spots the ones evhttp has freed: `bufferevent_free` clears their
/// callbacks, which a live evhttp connection never has cleared. (evhttp closes the socket
/// itself, so the extra reference never keeps a file descriptor open.)
///
/// A sweep drops freed ones. It runs when the count reaches the limit and every 250 ms while
/// any are tracked, so its O(n) cost is amortised over the connections that closed. At the
/// limit the listeners are disabled, and further clients wait in the kernel's backlog until a
/// sweep finds room. Loop thread only.
final class ConnectionGate {
    private let loop: EventLoop
    private let maxConnections: Int
    private var tracked: [OpaquePointer] = []
    private var sweepTimer: LoopTimer?
    private var isPaused = false
    var listeners: [OpaquePointer] = []

    init(loop: EventLoop, maxConnections: Int) {
        self.loop = loop
        self.maxConnections = max(1, maxConnections)
    }

    func makeBufferEvent(base: OpaquePointer) -> OpaquePointer? {
        if tracked.count >= maxConnections { sweep() }
        // No BEV_OPT_CLOSE_ON_FREE: evhttp closes an incoming connection's socket itself.
        guard let bufferEvent = bufferevent_socket_new(base, -1, 0) else { return nil }
        bufferevent_incref(bufferEvent)
        tracked.append(bufferEvent)
        if tracked.count >= maxConnections { setPaused(true) }
        scheduleSweep()
        return bufferEvent
    }

    /// Drops the references to every bufferevent evhttp has freed.
    private func sweep() {
        var index = 0
        while index < tracked.count {
            if isFreedByEvhttp(tracked[index]) {
                bufferevent_decref(tracked[index])
                tracked.swapAt(index, tracked.count - 1)
                tracked.removeLast()
            } else {
                index += 1
            }
        }
        if tracked.count < maxConnections { setPaused(false) }
    }

    private func isFreedByEvhttp(_ bufferEvent: OpaquePointer) -> Bool {
        var read: bufferevent_data_cb?
        var write: bufferevent_data_cb?
        var event: bufferevent_event_cb?
        var context: UnsafeMutableRawPointer?
        bufferevent_getcb(bufferEvent, &read, &write, &event, &context)
        return read == nil && write == nil && event == nil
    }

    private func scheduleSweep() {
        guard sweepTimer == nil else { return }
        sweepTimer = loop.schedule(after: .milliseconds(250)) { [unowned self] in
            sweepTimer = nil
            sweep()
            if !tracked.isEmpty { scheduleSweep() }
        }
    }

    /// Called when the server goes away: drop every extra reference.
    func releaseAll() {
        sweepTimer?.cancel()
        sweepTimer = nil
        for bufferEvent in tracked { bufferevent_decref(bufferEvent) }
        tracked = []
    }

    private func setPaused(_ paused: Bool) {
        guard paused != isPaused else { return }
        isPaused = paused
        for listener in listeners {
            if paused { evconnlistener_disable(listener) } else { evconnlistener_enable(listener) }
        }
    }
}
