import Dispatch
import Foundation
import Synchronization

/// A thread of its own that runs a pass, then sleeps `interval` (or until stopped), again and
/// again: retention and the webhook claim pass. ``stop()`` cuts the sleep short and waits up to
/// 5 s for the pass under way to end; a long pass checks ``isStopped`` between its steps.
final class PeriodicThread: Sendable {
    private let interval: Duration
    private let stopped = Mutex(false)
    private let started = Mutex(false)
    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)

    init(interval: Duration) {
        self.interval = interval
    }

    var isStopped: Bool { stopped.withLock { $0 } }

    /// Starts the thread, which runs `pass` at once and then every `interval`. Call once.
    func start(_ pass: @escaping @Sendable () -> Void) {
        started.withLock { $0 = true }
        Thread { [self] in
            while !isStopped {
                pass()
                _ = wake.wait(timeout: .now() + interval.dispatchInterval)
            }
            exited.signal()
        }.start()
    }

    /// Stops the thread (if it was started) and waits for it; safe to call more than once.
    func stop() {
        let first = stopped.withLock { stopped -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first, started.withLock({ $0 }) else { return }
        wake.signal()
        _ = exited.wait(timeout: .now() + .seconds(5))
    }
}
