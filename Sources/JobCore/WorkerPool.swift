import DequeModule
import Dispatch
import Foundation
import Logging
import Synchronization

/// A fixed pool of OS threads that run queued jobs, like `ThreadPoolExecutor`.
///
/// A job blocks its own worker thread while it runs; never more than `workerCount` jobs run
/// at once. The queue is bounded: ``submit(_:whenAccepted:)`` throws ``PoolError/queueFull``
/// rather than grow without limit.
public final class WorkerPool: Sendable {
    /// The pool's lifecycle. Changed only inside `state.withLock`.
    private enum Phase {
        /// Created; no threads yet. ``start()`` moves on to `accepting`.
        case idle
        /// Threads are running and submissions are taken.
        case accepting
        /// ``drain(grace:)`` began: no new submissions, and workers take no more queued jobs.
        case draining
        /// Every worker thread has exited.
        case stopped
    }

    private struct State {
        var phase = Phase.idle
        var queue = Deque<Job>()
        /// Jobs waiting for a worker, not counting any cancelled while queued.
        var queuedCount = 0
        var running: [JobID: Job] = [:]
    }

    /// Jobs waiting, and jobs running right now.
    public struct Statistics: Sendable, Equatable {
        public var queued: Int
        public var running: Int
        public var workers: Int
    }

    public let workerCount: Int
    public let maxQueued: Int
    private let logger: Logger
    private let state = Mutex(State())
    /// One signal per queued job, plus one per worker when stopping: workers sleep on it.
    private let workAvailable = DispatchSemaphore(value: 0)
    /// Entered when a job starts, left when it ends, so a drain can wait for "none running".
    private let runningGroup = DispatchGroup()
    /// Entered per worker thread, so a drain can wait for every thread to exit.
    private let threadsGroup = DispatchGroup()

    public init(workerCount: Int, maxQueued: Int, logger: Logger) {
        self.workerCount = max(1, workerCount)
        self.maxQueued = max(0, maxQueued)
        self.logger = logger
    }

    /// Starts the worker threads. Call once.
    public func start() {
        let started = state.withLock { state -> Bool in
            guard state.phase == .idle else { return false }
            state.phase = .accepting
            return true
        }
        guard started else { return }
        for index in 0..<workerCount {
            threadsGroup.enter()
            let thread = Thread { [self] in
                workerLoop()
                threadsGroup.leave()
            }
            thread.name = "jobpool-worker-\(index)"
            thread.start()
        }
    }

    /// Queues `job`. `whenAccepted` runs under the pool's lock once the job is sure to be
    /// queued, so that whatever it records (such as an index entry) exists exactly when the job
    /// does: a refused job leaves nothing behind. It must be quick and must not call the pool.
    public func submit(_ job: Job, whenAccepted: () -> Void = {}) throws(PoolError) {
        // A job cancelled while still queued frees its queue slot at once.
        job.addDoneCallback { [weak self] snapshot in
            guard snapshot.startedAt == nil, let self else { return }
            state.withLock { $0.queuedCount -= 1 }
        }
        try state.withLock { state throws(PoolError) in
            guard state.phase == .accepting else { throw PoolError.shuttingDown }
            guard state.queuedCount < maxQueued else { throw PoolError.queueFull(limit: maxQueued) }
            whenAccepted()
            state.queue.append(job)
            state.queuedCount += 1
        }
        workAvailable.signal()
    }

    public var statistics: Statistics {
        state.withLock { Statistics(queued: $0.queuedCount, running: $0.running.count, workers: workerCount) }
    }

    /// Stops the pool: refuses new jobs, lets running jobs finish for up to `grace`, then
    /// interrupts the rest and waits for every worker thread to exit. Blocks the caller, so
    /// never call it on an event-loop thread. Returns the jobs still queued, which never ran.
    @discardableResult
    public func drain(grace: Duration) -> [Job] {
        let started = state.withLock { state -> Bool in
            guard state.phase == .accepting else { return false }
            state.phase = .draining
            return true
        }
        guard started else { return [] }
        for _ in 0..<workerCount { workAvailable.signal() }

        if runningGroup.wait(timeout: .now() + grace.dispatchInterval) == .timedOut {
            let stragglers = state.withLock { Array($0.running.values) }
            logger.warning("Shutdown grace period ended; interrupting running jobs", metadata: ["count": "\(stragglers.count)"])
            for job in stragglers { _ = job.stop(.interrupted) }
        }
        // An interrupted job's work returns promptly; the timeout only guards against work that
        // ignores its stop signal, whose thread is then abandoned to process exit.
        _ = threadsGroup.wait(timeout: .now() + .seconds(3))
        return state.withLock { state in
            state.phase = .stopped
            return state.queue.filter { !$0.isFinished }
        }
    }

    private func workerLoop() {
        while true {
            workAvailable.wait()
            guard let job = nextJob() else {
                if state.withLock({ $0.phase != .accepting }) { return }
                continue
            }
            job.execute()
            state.withLock { _ = $0.running.removeValue(forKey: job.id) }
            runningGroup.leave()
        }
    }

    /// Takes the next runnable job, skipping cancelled ones. `nil` when there is none or the
    /// pool is draining.
    private func nextJob() -> Job? {
        state.withLock { state -> Job? in
            guard state.phase == .accepting else { return nil }
            while let job = state.queue.popFirst() {
                guard job.markRunning() else { continue } // cancelled while queued
                state.queuedCount -= 1
                state.running[job.id] = job
                runningGroup.enter()
                return job
            }
            return nil
        }
    }
}

/// Why the pool refused a job.
public enum PoolError: Error, Sendable, Equatable {
    /// The queue holds `limit` jobs already.
    case queueFull(limit: Int)
    /// The pool is draining or stopped.
    case shuttingDown
}

extension Duration {
    var dispatchInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        return .nanoseconds(Int(max(0, min(nanoseconds, Int64(Int.max)))))
    }
}
