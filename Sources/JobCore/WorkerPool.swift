import Dispatch
import Foundation
import Logging
import Synchronization

/// A fixed pool of OS threads that run queued jobs, like `ThreadPoolExecutor`.
///
/// A job blocks its own worker thread while it runs; never more than `workerCount` jobs run
/// at once. Workers take jobs only by claiming them from the store's ``WorkQueue`` (by priority,
/// see ``PriorityQueue``); the pool keeps the admission count of what waits. It is bounded:
/// ``submit(_:whenAccepted:)`` throws ``PoolError/queueFull`` rather than grow without limit.
public final class WorkerPool: Sendable {
    /// The pool's lifecycle. Changed only inside `state.withLock`.
    private enum Phase {
        /// Created; no threads yet, but jobs may be queued. ``start()`` moves on to `accepting`.
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
        /// Jobs waiting for a worker, not counting any cancelled while queued.
        var queuedCount = 0
        /// The same, by owner, for owners with jobs waiting (jobs without an owner are not listed).
        var queuedByOwner: [String: Int] = [:]
        var running: [JobID: Job] = [:]
        /// Workers asleep on `workAvailable`.
        var idleWorkers = 0
        /// A wake-up was sent and its worker has not yet run. While one is pending, submissions
        /// wake nobody else: the awake worker takes jobs in turn and wakes another only if
        /// work is still left. This keeps a stream of short jobs from costing one futex wake
        /// and one context switch each.
        var wakePending = false
        /// A deferred wake-up was handed to `deferWakeUp` and has not run yet.
        var wakeDeferred = false

        /// Counts `count` more jobs of `owner` waiting.
        mutating func takeSlots(_ count: Int, owner: String?) {
            queuedCount += count
            if let owner { queuedByOwner[owner, default: 0] += count }
        }

        /// Counts `count` fewer jobs of `owner` waiting (taken by a worker, cancelled, or refused).
        mutating func giveBackSlots(_ count: Int, owner: String?) {
            queuedCount -= count
            guard let owner else { return }
            let left = queuedByOwner[owner, default: 0] - count
            queuedByOwner[owner] = left > 0 ? left : nil
        }

        /// Claims the right to wake one idle worker, if one is asleep and none is being woken.
        mutating func claimWake(work: any WorkQueue) -> Bool {
            guard idleWorkers > 0, !wakePending, work.hasClaimableWork else { return false }
            wakePending = true
            return true
        }
    }

    /// Jobs waiting, and jobs running right now.
    public struct Statistics: Sendable, Equatable {
        public var queued: Int
        public var running: Int
        public var workers: Int
        /// When the job that has waited longest for a worker was queued.
        public var oldestQueuedAt: Date?
    }

    /// Runs a wake-up later; see ``init(workerCount:maxQueued:logger:deferWakeUp:)``.
    public typealias WakeUpDeferral = @Sendable (_ wakeUp: @escaping @Sendable () -> Void) -> Void

    public let workerCount: Int
    public let maxQueued: Int
    /// Jobs one owner may have waiting; nil for no limit but `maxQueued`. Jobs without an
    /// owner count only against `maxQueued`.
    public let maxQueuedPerOwner: Int?
    private let logger: Logger
    private let deferWakeUp: WakeUpDeferral?
    /// Called on the worker thread right after a job starts running (to record the start),
    /// with the job as it started.
    private let onStart: (@Sendable (Job, JobSnapshot) -> Void)?
    /// Called on the worker thread when a run ended in a retryable failure and the job is
    /// `scheduled` again.
    private let retryHandler = Mutex<(@Sendable (Job, RetryPlan) -> Void)?>(nil)
    private let backoff: RetryBackoff
    private let state: Mutex<State>
    /// Where workers claim jobs: the store's due work.
    private let work: any WorkQueue
    /// Idle workers sleep on it; see `State.wakePending` for when it is signalled.
    private let workAvailable = DispatchSemaphore(value: 0)
    /// Entered when a job starts, left when it ends, so a drain can wait for "none running".
    private let runningGroup = DispatchGroup()
    /// Entered per worker thread, so a drain can wait for every thread to exit.
    private let threadsGroup = DispatchGroup()

    /// - Parameter deferWakeUp: When given, a submission does not wake an idle worker itself;
    ///   it hands a wake-up to this function to run a little later, and further submissions
    ///   meanwhile share it. An event loop passes "run after this batch of callbacks", so a
    ///   burst of requests handled in one loop iteration costs one futex wake, not one each.
    ///   - work: the store's due work, where workers claim jobs (see ``JobStore/workQueue``).
    public init(workerCount: Int, maxQueued: Int, maxQueuedPerOwner: Int? = nil, logger: Logger, deferWakeUp: WakeUpDeferral? = nil,
                work: any WorkQueue = LocalWorkQueue(), backoff: RetryBackoff = RetryBackoff(),
                onStart: (@Sendable (Job, JobSnapshot) -> Void)? = nil) {
        self.onStart = onStart
        self.backoff = backoff
        self.work = work
        self.state = Mutex(State())
        // 0: a node of a cluster that serves the API and claims nothing (a shared queue only).
        self.workerCount = max(0, workerCount)
        self.maxQueued = max(0, maxQueued)
        self.maxQueuedPerOwner = maxQueuedPerOwner.map { max(0, $0) }
        self.logger = logger
        self.deferWakeUp = deferWakeUp
    }

    /// Sets what runs when a job is `scheduled` again after a retryable failure (set once,
    /// before ``start()``; the executor schedules the next attempt).
    public func onRetry(_ handler: @escaping @Sendable (Job, RetryPlan) -> Void) {
        retryHandler.withLock { $0 = handler }
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
        // A shared queue's claimer claims only for free workers: there are some now.
        work.workerFreed()
    }

    /// Queues `job`. `whenAccepted` runs once the job is sure to be queued, so that whatever
    /// it records (an index entry) exists exactly when the job does: a refused job leaves
    /// nothing behind. It must not call the pool.
    public func submit(_ job: Job, whenAccepted: () -> Void = {}) throws(PoolError) {
        try reserveSlot(owner: job.owner)
        whenAccepted()
        enqueue(reserved: job)
    }

    /// Takes queue slots for `owner`'s jobs about to be queued, or throws if the queue, or that
    /// owner's share of it, is full, or the pool is stopping. Follow with
    /// ``enqueue(reserved:)`` or ``releaseSlot(count:owner:)``.
    public func reserveSlot(count: Int = 1, owner: String? = nil) throws(PoolError) {
        try state.withLock { state throws(PoolError) in
            // Before start() jobs may queue up (recovered work); they run once threads exist.
            guard state.phase == .accepting || state.phase == .idle else { throw PoolError.shuttingDown }
            // Only scheduled jobs: nothing is queued now, so there is no limit to check.
            guard count > 0 else { return }
            if let owner, let limit = maxQueuedPerOwner, state.queuedByOwner[owner, default: 0] + count > limit {
                throw PoolError.ownerQueueFull(limit: limit)
            }
            guard state.queuedCount + count <= maxQueued else { throw PoolError.queueFull(limit: maxQueued) }
            state.takeSlots(count, owner: owner)
        }
    }

    /// Gives back slots from ``reserveSlot(count:owner:)`` whose jobs will not be queued after all.
    public func releaseSlot(count: Int = 1, owner: String? = nil) {
        state.withLock { $0.giveBackSlots(count, owner: owner) }
    }

    /// Queues a job for which a slot was reserved.
    public func enqueue(reserved job: Job) {
        append(job)
    }

    /// Queues a job that was accepted earlier (recovered, or scheduled and now due), whatever
    /// the queue's limit: it was acknowledged long ago.
    public func enqueueAccepted(_ job: Job) {
        state.withLock { $0.takeSlots(1, owner: job.owner) }
        append(job)
    }

    private func append(_ job: Job) {
        if work.isShared {
            // Another node may claim it: this pool holds no slot for it past this point, and
            // the queue's claimer wakes a worker once it has claimed work for this node.
            state.withLock { $0.giveBackSlots(1, owner: job.owner) }
            work.offer(job)
            return
        }
        // A job cancelled while still queued frees its queue slot at once; one cancelled
        // before it got here (between its acceptance and now) gives the slot back right away.
        let owner = job.owner
        let held = job.holdQueueSlot { [weak self] in
            self?.state.withLock { $0.giveBackSlots(1, owner: owner) }
        }
        guard held else {
            state.withLock { $0.giveBackSlots(1, owner: owner) }
            return
        }
        let deferred = deferWakeUp != nil
        // Offered before the pool's lock is taken below: a worker that claims under that lock
        // either finds the job, or has gone idle by the time the wake-up is decided.
        work.offer(job)
        let wake = state.withLock { [work] state -> Bool in
            guard deferred else { return state.claimWake(work: work) }
            guard !state.wakeDeferred else { return false }
            state.wakeDeferred = true
            return true
        }
        guard wake else { return }
        if let deferWakeUp {
            deferWakeUp { [weak self] in self?.runDeferredWakeUp() }
        } else {
            workAvailable.signal()
        }
    }

    private func runDeferredWakeUp() {
        let wake = state.withLock { [work] state -> Bool in
            state.wakeDeferred = false
            return state.claimWake(work: work)
        }
        if wake { workAvailable.signal() }
    }

    /// Workers not running a job, for a shared queue's claimer: none unless the pool takes jobs.
    public var freeWorkers: Int {
        state.withLock { $0.phase == .accepting ? max(0, workerCount - $0.running.count) : 0 }
    }

    /// Wakes an idle worker for work a shared queue's claimer has just claimed.
    public func wakeForClaimedWork() {
        let wake = state.withLock { [work] in $0.claimWake(work: work) }
        if wake { workAvailable.signal() }
    }

    /// True while the pool takes new jobs (started, not draining).
    public var isAccepting: Bool { state.withLock { $0.phase == .accepting } }

    public var statistics: Statistics {
        state.withLock { [work] in
            Statistics(queued: $0.queuedCount, running: $0.running.count, workers: workerCount,
                       oldestQueuedAt: work.oldestQueuedAt(owner: .none))
        }
    }

    /// One owner's share of the pool: jobs of theirs running, and their longest-waiting job.
    public func statistics(owner: String?) -> (running: Int, oldestQueuedAt: Date?) {
        state.withLock { [work] state in
            (state.running.values.count(where: { $0.owner == owner }), work.oldestQueuedAt(owner: .some(owner)))
        }
    }

    /// Stops the pool: refuses new jobs, lets running jobs finish for up to `grace`, then
    /// interrupts the rest and waits for every worker thread to exit. Blocks the caller, so
    /// never call it on an event-loop thread. Returns the jobs still queued, which never ran.
    @discardableResult
    /// `beforeInterrupting` runs once the grace period is over, only if jobs are still running,
    /// just before they are interrupted.
    public func drain(grace: Duration, beforeInterrupting: @Sendable () -> Void = {}) -> [Job] {
        let started = state.withLock { state -> Bool in
            guard state.phase == .accepting else { return false }
            state.phase = .draining
            return true
        }
        guard started else { return [] }
        for _ in 0..<workerCount { workAvailable.signal() }

        if runningGroup.wait(timeout: .now() + grace.dispatchInterval) == .timedOut {
            beforeInterrupting()
            let stragglers = state.withLock { Array($0.running.values) }
            logger.warning("Shutdown grace period ended; interrupting running jobs", metadata: ["count": "\(stragglers.count)"])
            for job in stragglers { _ = job.stop(.interrupted) }
        }
        // An interrupted job's work returns promptly; the timeout only guards against work that
        // ignores its stop signal, whose thread is then abandoned to process exit.
        _ = threadsGroup.wait(timeout: .now() + .seconds(3))
        state.withLock { $0.phase = .stopped }
        return work.takeUnclaimed().filter { !$0.isFinished }
    }

    /// What a worker does next.
    private enum NextStep {
        /// Run the job, after telling its observers it is running (outside the pool's lock).
        case run(Job, StateChangeNotice, wakeAnother: Bool)
        case sleep
        case exit
    }

    /// A worker's loop. Each turn takes the pool's lock once: to account for what the last turn
    /// left (the job that ended, or the wake-up that ended its sleep) and to take the next job.
    /// Profiled on one PostgreSQL node with 64 workers, where each claim's batch wakes many
    /// workers at once, the pool's lock was the node's most contended one.
    private func workerLoop() {
        var ended: Job?
        var woken = false
        while true {
            let step = nextStep(after: ended, woken: woken)
            if ended != nil {
                runningGroup.leave()
                work.workerFreed()
            }
            ended = nil
            woken = false
            switch step {
            case .exit:
                return
            case .sleep:
                workAvailable.wait()
                woken = true
            case .run(let job, let started, let wakeAnother):
                if wakeAnother { workAvailable.signal() }
                started.deliver()
                onStart?(job, started.snapshot)
                if case .retry(let plan) = job.execute(backoff: backoff) { retryHandler.withLock { $0 }?(job, plan) }
                ended = job
            }
        }
    }

    /// Takes the next runnable job, skipping cancelled ones; or says to sleep (counted as idle
    /// under the same lock, so no wake-up can be missed) or, when draining, to exit. First it
    /// counts `ended` as no longer running, and a wake-up taken (`woken`) as no longer idle.
    ///
    /// The rule for callbacks: no job observer, done-callback or state-change hook runs under
    /// the pool's lock. Taking a job off the queue and marking it running must be one step
    /// (so that a cancel cannot slip between them), so the "running" notice is returned and
    /// delivered by the worker after the lock is released.
    private func nextStep(after ended: Job?, woken: Bool) -> NextStep {
        let now = Date()
        return state.withLock { [work] state -> NextStep in
            if let ended { state.running.removeValue(forKey: ended.id) }
            if woken {
                state.idleWorkers -= 1
                state.wakePending = false
            }
            guard state.phase == .accepting else { return .exit }
            while let job = work.claimNext(now: now) {
                guard let started = job.markRunning() else { continue } // cancelled while queued
                if !work.isShared { state.giveBackSlots(1, owner: job.owner) }
                state.running[job.id] = job
                runningGroup.enter()
                return .run(job, started, wakeAnother: state.claimWake(work: work))
            }
            state.idleWorkers += 1
            return .sleep
        }
    }
}

/// Why the pool refused a job.
public enum PoolError: Error, Sendable, Equatable {
    /// The queue holds `limit` jobs already.
    case queueFull(limit: Int)
    /// The job's owner has `limit` jobs waiting already (its share of the queue).
    case ownerQueueFull(limit: Int)
    /// The pool is draining or stopped.
    case shuttingDown
}
