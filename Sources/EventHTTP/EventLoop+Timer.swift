import CLibevent

/// A one-shot timer on an ``EventLoop``. Create, fire and cancel it on the loop thread only.
public final class LoopTimer {
    private var event: OpaquePointer?
    private var body: (() -> Void)?

    fileprivate init() {}

    /// Stops the timer if it has not fired yet; its closure is released without running.
    public func cancel() {
        guard let event else { return }
        event_free(event) // event_free deletes a pending event first
        self.event = nil
        body = nil
        Unmanaged.passUnretained(self).release() // the retain taken in schedule
    }

    fileprivate func fire() {
        let work = body
        if let event { event_free(event) }
        event = nil
        body = nil
        work?()
        Unmanaged.passUnretained(self).release()
    }

    fileprivate func arm(on base: OpaquePointer, after delay: Duration, body: @escaping () -> Void) {
        self.body = body
        // The event holds a +1 reference to the timer until it fires or is cancelled.
        let context = Unmanaged.passRetained(self).toOpaque()
        event = event_new(base, -1, 0, loopTimerCallback, context)
        var interval = timeval(duration: delay)
        event_add(event, &interval)
    }
}

extension EventLoop {
    /// Runs `body` on the loop thread after `delay`, unless the returned timer is cancelled
    /// first. Call on the loop thread.
    @discardableResult
    public func schedule(after delay: Duration, _ body: @escaping () -> Void) -> LoopTimer {
        let timer = LoopTimer()
        timer.arm(on: base, after: delay, body: body)
        return timer
    }
}

private func loopTimerCallback(_ fd: Int32, _ what: Int16, _ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<LoopTimer>.fromOpaque(context).takeUnretainedValue().fire()
}

extension timeval {
    init(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let clampedSeconds = max(0, seconds)
        self.init(tv_sec: Int(clampedSeconds), tv_usec: seconds < 0 ? 0 : Int(attoseconds / 1_000_000_000_000))
    }
}
