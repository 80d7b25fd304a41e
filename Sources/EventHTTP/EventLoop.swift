import CLibevent
import Glibc
import Synchronization

/// One libevent `event_base`, driven by exactly one thread that calls ``run()``.
///
/// Other threads talk to the loop only through ``execute(_:)`` and ``stop()``: both queue
/// work under a `Mutex` and wake the loop with `event_active` on a pre-made event, which
/// libevent makes thread-safe once `evthread_use_pthreads()` has run. Everything else
/// (timers, HTTP requests, replies) belongs to the loop thread.
///
/// ```swift
/// let loop = try EventLoop()
/// Thread { loop.run() }.start()
/// loop.execute { print("on the loop thread") }
/// ```
public final class EventLoop: @unchecked Sendable {
    // @unchecked: `base` and `wakeEvent` are written once in `init`. After that they are only
    // passed to libevent calls that are thread-safe under evthread_use_pthreads (event_active,
    // event_base_loopexit) or are made on the loop thread.
    let base: OpaquePointer
    private let wakeEvent: OpaquePointer
    private let pending = Mutex<[@Sendable () -> Void]>([])
    private let loopThread = Mutex<pthread_t?>(nil)

    /// Creates the event base. libevent's pthread locking is switched on first, as it must be
    /// before any base exists.
    public init() throws(EventError) {
        _ = EventLoop.enableThreadSupport
        guard let base = event_base_new() else { throw EventError.libevent("event_base_new failed") }
        self.base = base
        // The wake-up event is never added; `event_active` makes it run once per wake.
        guard let wake = event_new(base, -1, 0, eventLoopWakeCallback, nil) else {
            event_base_free(base)
            throw EventError.libevent("event_new for the wake-up event failed")
        }
        self.wakeEvent = wake
        event_assign(wake, base, -1, 0, eventLoopWakeCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        event_free(wakeEvent)
        event_base_free(base)
    }

    private static let enableThreadSupport: Void = {
        _ = evthread_use_pthreads()
    }()

    /// Runs the loop on the calling thread until ``stop()``. Returns when the loop has exited.
    public func run() {
        loopThread.withLock { $0 = pthread_self() }
        event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY)
        runPending()
        loopThread.withLock { $0 = nil }
    }

    /// Asks the loop to exit after the current iteration. Safe from any thread.
    public func stop() {
        event_base_loopexit(base, nil)
    }

    /// Runs `work` on the loop thread soon. Safe from any thread; this is the one way a worker
    /// thread reaches the loop.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        let wasEmpty = pending.withLock { queue in
            queue.append(work)
            return queue.count == 1
        }
        // One wake per batch: a second event_active on an already-active event is harmless,
        // but skipping it saves a lock round-trip inside libevent under load.
        if wasEmpty { event_active(wakeEvent, 0, 0) }
    }

    /// True on the thread that is running the loop.
    public var isOnLoopThread: Bool {
        loopThread.withLock { thread in thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    fileprivate func runPending() {
        let batch = pending.withLock { queue -> [@Sendable () -> Void] in
            let taken = queue
            queue.removeAll(keepingCapacity: true)
            return taken
        }
        for work in batch { work() }
    }
}

private func eventLoopWakeCallback(_ fd: Int32, _ what: Int16, _ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<EventLoop>.fromOpaque(context).takeUnretainedValue().runPending()
}

/// A failure reported by libevent itself.
public enum EventError: Error, CustomStringConvertible {
    case libevent(String)
    case bind(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case .libevent(let message): return "libevent: \(message)"
        case .bind(let host, let port, let reason): return "cannot listen on \(host):\(port): \(reason)"
        }
    }
}
