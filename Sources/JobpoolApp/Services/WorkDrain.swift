import JobCore
import Synchronization

/// The drain of the work under way, run once: the pool takes no more queued jobs, and running
/// jobs get the grace period before they are interrupted.
///
/// The HTTP service runs it while it still serves, because a parked waiter must get its job's
/// final state when the job finishes within the grace period; the worker-pool service runs it
/// only if the HTTP service did not.
final class WorkDrain: Sendable {
    private let executor: JobExecutor
    private let grace: Duration
    private let done = Mutex(false)

    init(executor: JobExecutor, grace: Duration) {
        self.executor = executor
        self.grace = grace
    }

    /// Drains, blocking for up to the grace period (plus the few seconds interrupted work takes
    /// to return). A second caller waits for the first one's drain to end, then returns.
    /// `beforeInterrupting` runs when the grace period is over, before the jobs still running are
    /// interrupted (the HTTP service answers its parked requests there).
    func run(beforeInterrupting: @Sendable () -> Void = {}) {
        // The lock is held for the whole drain on purpose: whoever comes second must not go on
        // (to stop the reader threads, say) while the pool is still draining.
        done.withLock { done in
            guard !done else { return }
            done = true
            _ = executor.drain(grace: grace, beforeInterrupting: beforeInterrupting)
        }
    }
}
