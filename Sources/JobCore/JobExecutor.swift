import Dispatch
import Foundation
import Logging
import Synchronization

/// The job service's core, like `ThreadPoolExecutor`: known kinds, the index of jobs, and the
/// worker pool. Everything the HTTP layer does to jobs goes through here.
///
/// ```swift
/// let executor = JobExecutor(configuration: .init(workers: 8), kinds: [WriteCode()], logger: logger)
/// executor.start()
/// let job = try executor.submit(kind: "write_code", input: .object(["name": .string("alex")]))
/// ```
public final class JobExecutor: Sendable {
    public struct Configuration: Sendable {
        /// Worker threads, and so the most jobs that run at once.
        public var workers: Int
        /// Jobs that may wait in the queue before submissions are refused.
        public var maxQueued: Int
        /// Jobs one owner (tenant) may have waiting, so that one cannot fill the queue for all;
        /// nil for no limit but `maxQueued`. Jobs without an owner count only against `maxQueued`.
        public var maxQueuedPerOwner: Int?
        /// How long a queued job waits to gain one priority level (see ``PriorityQueue``).
        public var priorityAgingStep: Duration
        /// The wait between attempts after a retryable failure.
        public var retryBackoff: RetryBackoff

        public init(workers: Int = 8, maxQueued: Int = 100_000, maxQueuedPerOwner: Int? = nil,
                    priorityAgingStep: Duration = .seconds(10), retryBackoff: RetryBackoff = RetryBackoff()) {
            self.workers = workers
            self.maxQueued = maxQueued
            self.maxQueuedPerOwner = maxQueuedPerOwner
            self.priorityAgingStep = priorityAgingStep
            self.retryBackoff = retryBackoff
        }
    }

    private let kinds: [String: any JobKind]
    private let registry = JobRegistry()
    private let pool: WorkerPool
    private let store: any JobStore
    private let logger: Logger
    private let completionHandler: (any CompletionHandler)?
    public let metrics: JobMetrics
    /// Jobs by owner, kind and state, for statistics.
    public let counts = JobCounts()
    /// Every visible change of every job, for the live event stream.
    public let changes: JobChangeFeed
    /// Scheduled jobs falling due and time limits: one serial queue of timers, off the loop.
    private let timers = DispatchQueue(label: "jobpool.timers")

    /// - Parameters:
    ///   - store: where jobs are kept; ``MemoryStore`` keeps nothing.
    ///   - deferWakeUp: see ``WorkerPool/init(workerCount:maxQueued:logger:deferWakeUp:agingStep:backoff:onStart:)``.
    ///   - completionHandler: gets the completion of every job that has a webhook.
    ///   - changes: where every job change is announced (the webhook deliverer may share it).
    public init(configuration: Configuration, kinds: [any JobKind], store: any JobStore = MemoryStore(), logger: Logger,
                deferWakeUp: WorkerPool.WakeUpDeferral? = nil, completionHandler: (any CompletionHandler)? = nil,
                metrics: JobMetrics = .none, changes: JobChangeFeed = JobChangeFeed()) {
        self.completionHandler = completionHandler
        self.changes = changes
        self.metrics = metrics
        self.kinds = Dictionary(kinds.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.store = store
        let isDurable = store.isDurable
        let timers = self.timers
        let recordStart: @Sendable (Job) -> Void = { job in
            let snapshot = job.snapshot()
            let startedAt = snapshot.startedAt ?? Date()
            if let limit = job.options.timeLimitSeconds {
                timers.asyncAfter(deadline: .now() + limit) { [weak job, attempt = snapshot.attempt] in
                    job?.stop(.timeLimit(seconds: limit), attempt: attempt)
                }
            }
            metrics.started(kind: job.kind, queueWait: .microseconds(Int64(startedAt.timeIntervalSince(job.createdAt) * 1_000_000)))
            if isDurable {
                store.apply(StoreChange.started(job.key, attempt: snapshot.attempt, at: startedAt), whenDurable: nil)
            }
        }
        let pool = WorkerPool(workerCount: configuration.workers, maxQueued: configuration.maxQueued,
                              maxQueuedPerOwner: configuration.maxQueuedPerOwner, logger: logger, deferWakeUp: deferWakeUp, agingStep: configuration.priorityAgingStep,
                              backoff: configuration.retryBackoff, onStart: recordStart)
        self.pool = pool
        self.logger = logger
        pool.onRetry { [weak self] job, plan in self?.retryScheduled(job, plan: plan) }
    }

    /// The kind names clients may submit, sorted.
    public var kindNames: [String] { kinds.keys.sorted() }

    /// True while the store accepts writes.
    public var isStoreWritable: Bool { store.isWritable }

    public func start() { pool.start() }

    /// Checks a job's kind and input, making its work. Nothing is created yet.
    public func prepare(_ spec: JobSpec) throws(SubmitError) -> PreparedJob {
        guard let jobKind = kinds[spec.kind] else { throw SubmitError.unknownKind(spec.kind, known: kindNames) }
        do throws(InputError) {
            return PreparedJob(spec: spec, work: try jobKind.makeWork(input: spec.input))
        } catch {
            throw SubmitError.invalidInput(error)
        }
    }

    /// Checks one job and queues (or schedules) it once it is durable; see ``submit(_:whenDurable:)``.
    public func submit(kind: String, input: JSONValue, webhook: WebhookTarget? = nil, options: JobOptions = JobOptions(),
                       owner: String? = nil, whenDurable: @escaping @Sendable (Result<Job, SubmitError>) -> Void) throws(SubmitError) -> Job? {
        let spec = JobSpec(kind: kind, input: input, webhook: webhook, owner: owner, options: options)
        return try submit([prepare(spec)]) { result in whenDurable(result.map { $0[0] }) }?.first
    }

    /// Creates prepared jobs, all or none, and queues (or schedules) them once durable.
    ///
    /// Returns the jobs at once when the store keeps nothing (``MemoryStore``). Otherwise returns
    /// `nil` and calls `whenDurable` (on the store's thread) once the jobs are committed and
    /// queued, or with ``SubmitError/storeUnavailable(_:)``. Nothing is created unless it succeeds.
    public func submit(_ prepared: [PreparedJob], whenDurable: @escaping @Sendable (Result<[Job], SubmitError>) -> Void) throws(SubmitError) -> [Job]? {
        let now = Date()
        let runsNow = prepared.count { ($0.spec.options.runAt ?? now) <= now }
        // One request submits for one owner, so its first job's owner is everyone's.
        let owner = prepared.first?.spec.owner
        precondition(prepared.allSatisfy { $0.spec.owner == owner }, "one submission, one owner: queue places are counted per owner")
        do throws(PoolError) {
            try pool.reserveSlot(count: runsNow, owner: owner)
        } catch {
            switch error {
            case .queueFull(let limit): throw SubmitError.queueFull(limit: limit)
            case .ownerQueueFull(let limit): throw SubmitError.ownerQueueFull(limit: limit)
            case .shuttingDown: throw SubmitError.shuttingDown
            }
        }
        let jobs = prepared.map { item in
            let spec = item.spec
            let scheduled = (spec.options.runAt ?? now) > now
            var options = spec.options
            if !scheduled { options.runAt = nil }
            let job = Job(kind: spec.kind, input: spec.input, createdAt: registry.nextCreationTime(now: now), webhook: spec.webhook,
                          owner: spec.owner, options: options, status: scheduled ? .scheduled : .queued,
                          onStateChange: stateChangeHook, work: item.work)
            watchCompletion(of: job)
            return job
        }
        guard store.isDurable else {
            for job in jobs { accept(job) }
            return jobs
        }
        store.apply(.submitted(jobs.map { $0.record() })) { [self] result in
            switch result {
            case .success:
                for job in jobs { accept(job) }
                whenDurable(.success(jobs))
            case .failure(let error):
                pool.releaseSlot(count: runsNow, owner: owner)
                for job in jobs { counts.removed(job, state: job.snapshot().status) }
                whenDurable(.failure(.storeUnavailable(error.message)))
            }
        }
        return nil
    }

    /// Each job's state changes go to the counts and to the change feed.
    private var stateChangeHook: JobStateChangeHook {
        let counts = counts.hook
        return { [changes] job, from, to in
            counts(job, from, to)
            changes.stateChanged(job, from: from, to: to)
        }
    }

    /// Makes a durable job visible, and runnable now or when due.
    private func accept(_ job: Job) {
        metrics.submitted(kind: job.kind)
        registry.insert(job)
        changes.created(job, status: job.options.runAt == nil ? .queued : .scheduled)
        // A job created scheduled keeps its run_at as the due time (see submit).
        if let due = job.options.runAt {
            schedule(job, at: due)
        } else {
            pool.enqueue(reserved: job)
        }
        logger.debug("Job accepted", metadata: ["job.id": "\(job.id)", "job.kind": "\(job.kind)"])
    }

    /// Queues a scheduled job when it falls due, unless it was cancelled meanwhile.
    private func schedule(_ job: Job, at due: Date) {
        timers.asyncAfter(wallDeadline: .now() + max(0, due.timeIntervalSinceNow)) { [weak self, weak job] in
            guard let self, let job, job.markDue() else { return }
            pool.enqueueAccepted(job)
        }
    }

    /// A run failed in a way worth retrying: record it and schedule the next attempt.
    private func retryScheduled(_ job: Job, plan: RetryPlan) {
        metrics.counter("jobpool_job_retries_total", [("kind", job.kind)]).increment()
        logger.info("Job attempt failed; retrying", metadata: [
            "job.id": "\(job.id)", "attempt": "\(plan.failedAttempt)", "error.code": "\(plan.failure.code)",
            "next_attempt_at": "\(plan.due)",
        ])
        if store.isDurable {
            store.apply(.retrying(job.key, attempt: plan.failedAttempt, startedAt: plan.startedAt, error: plan.failure,
                                  at: Date(), nextAttemptAt: plan.due), whenDurable: nil)
        }
        schedule(job, at: plan.due)
    }

    /// The unexpired job an idempotency key of this owner created, if any.
    public func job(forIdempotencyKey key: String, owner: String?) -> Job? {
        registry.job(forIdempotencyKey: key, owner: owner)
    }

    /// Records the job's final state, with its webhook event in the same transaction, then hands
    /// the event to the deliverer.
    private func watchCompletion(of job: Job) {
        // Weak: a job refused by a full queue must not keep itself alive through this.
        job.addDoneCallback { [weak self, weak job] final in
            guard let self, let job else { return }
            jobFinished(job, final: final)
        }
    }

    private func jobFinished(_ job: Job, final: JobSnapshot) {
        let runTime = final.startedAt.flatMap { started in final.finishedAt.map { Duration.microseconds(Int64($0.timeIntervalSince(started) * 1_000_000)) } }
        metrics.finished(kind: job.kind, status: final.status, runTime: runTime)
        guard store.isDurable || (job.webhook != nil && completionHandler != nil) else { return }
        if store.isDurable, final.error == .interrupted {
            // A drain stopped it: it runs again after the restart, as the same attempt.
            store.apply(.requeued(job.key, attempt: final.attempt, interrupted: nil), whenDurable: nil)
            return
        }
        let event = job.webhook != nil ? completionHandler?.makeEvent(for: job, final: final) : nil
        let change = StoreChange.finished(job.key, attempt: final.attempt, startedAt: final.startedAt, status: final.status,
                                          result: final.result, error: final.error, at: final.finishedAt ?? Date(), event: event)
        store.apply(change) { [completionHandler] result in
            // Failed writes of a final state are retried by the store until they succeed.
            if case .success = result, let event { completionHandler?.eventCommitted(event, job: job) }
        }
    }

    /// Loads what the store kept and resumes it: queued jobs in order; jobs that were running
    /// when the process died run again as their next attempt while they have attempts left,
    /// and fail with `interrupted` otherwise. Call before ``start()``.
    public func recover(_ stored: StoredState) -> RecoveryReport {
        var report = RecoveryReport()
        let webhookStatus = Dictionary(stored.webhookEvents.map {
            ($0.jobID, WebhookStatus(url: $0.url, state: $0.state, attempts: $0.attempts.count))
        }, uniquingKeysWith: { first, _ in first })
        for original in stored.jobs {
            var record = original
            let wasRunning = record.status == .running
            let outOfAttempts = wasRunning && record.attempt >= record.maxAttempts
            if wasRunning {
                record.status = .queued
                if !outOfAttempts { record.attempt += 1 }
            }
            let work: JobWork
            if let kind = kinds[record.kind], let made = try? kind.makeWork(input: record.input) {
                work = made
            } else {
                work = { [kind = record.kind] _ throws(JobFailure) in
                    throw JobFailure(code: "unknown_kind", message: "This server no longer runs jobs of kind '\(kind)'.")
                }
            }
            let status = webhookStatus[record.id] ?? record.webhook.map { WebhookStatus(url: $0.url, state: .pending, attempts: 0) }
            let job = Job(restoring: record, webhookStatus: status, onStateChange: stateChangeHook, work: work)
            registry.insert(job)
            guard !record.status.isFinished else { continue }
            watchCompletion(of: job)
            if record.status == .scheduled {
                schedule(job, at: record.nextAttemptAt ?? Date())
                report.resumedScheduled += 1
                continue
            }
            if outOfAttempts {
                job.fail(JobFailure(code: "interrupted", message: "The server stopped while this job was running, and it had used all \(record.maxAttempts) of its attempts (max_attempts)."))
                report.failedOutOfAttempts += 1
                continue
            }
            if wasRunning {
                let interrupted = (attempt: job.attempt - 1, startedAt: original.startedAt ?? original.createdAt)
                store.apply(.requeued(job.key, attempt: job.attempt, interrupted: interrupted), whenDurable: nil)
                report.requeuedAfterCrash += 1
            } else {
                report.resumedQueued += 1
            }
            pool.enqueueAccepted(job)
        }
        report.loaded = stored.jobs.count
        return report
    }

    /// Removes up to `limit` jobs that finished before `cutoff`, oldest first, except those
    /// whose webhook is still pending. Returns how many were removed.
    @discardableResult
    public func purgeFinished(before cutoff: Date, limit: Int) -> Int {
        let ids = registry.finishedJobs(before: cutoff, limit: limit)
        guard !ids.isEmpty else { return 0 }
        let done = DispatchSemaphore(value: 0)
        let succeeded = Mutex(false)
        store.apply(.purged(ids)) { result in
            if case .success = result { succeeded.withLock { $0 = true } }
            done.signal()
        }
        done.wait()
        guard succeeded.withLock({ $0 }) else { return 0 }
        let removed = Set(ids.map(\.id))
        for job in registry.remove(removed) { counts.removed(job, state: job.snapshot().status) }
        completionHandler?.jobsPurged(removed)
        return ids.count
    }

    /// The job with this ID, if it exists.
    public func job(withID id: JobID) -> Job? { registry.job(withID: id) }

    /// A page of jobs, newest first.
    public func list(filter: JobFilter = JobFilter(), limit: Int = 50, after cursor: JobCursor? = nil) -> JobPage {
        registry.list(filter: filter, limit: limit, after: cursor)
    }

    public var statistics: WorkerPool.Statistics { pool.statistics }

    /// One owner's running jobs and longest-waiting queued job.
    public func statistics(owner: String?) -> (running: Int, oldestQueuedAt: Date?) { pool.statistics(owner: owner) }

    /// True while the worker pool takes new jobs.
    public var isAccepting: Bool { pool.isAccepting }

    /// Stops taking jobs, gives running ones `grace` to finish, then interrupts them. Blocks;
    /// call it off the event loop. Returns how many queued jobs never ran.
    @discardableResult
    public func drain(grace: Duration) -> Int {
        let neverRan = pool.drain(grace: grace)
        let scheduled = counts.snapshot().filter { $0.key.state == .scheduled }.values.reduce(0, +)
        if scheduled > 0, !store.isDurable {
            logger.warning("Scheduled jobs were not run before shutdown; the in-memory store does not keep them",
                           metadata: ["count": "\(scheduled)"])
        }
        if !neverRan.isEmpty {
            if store.isDurable {
                logger.info("Queued jobs stay queued in the store for the next start", metadata: ["count": "\(neverRan.count)"])
            } else {
                logger.warning("Queued jobs were not run before shutdown; the in-memory store does not keep them",
                               metadata: ["count": "\(neverRan.count)"])
            }
        }
        return neverRan.count
    }
}

/// Why a submission was refused. Nothing was created.
public enum SubmitError: Error, Sendable, Equatable {
    case unknownKind(String, known: [String])
    case invalidInput(InputError)
    case queueFull(limit: Int)
    /// The owner (tenant) has `limit` jobs waiting already: its share of the queue.
    case ownerQueueFull(limit: Int)
    case shuttingDown
    /// The store could not write the job; nothing was acknowledged.
    case storeUnavailable(String)
}

/// What ``JobExecutor/recover(_:)`` did.
public struct RecoveryReport: Sendable, Equatable {
    public var loaded = 0
    public var resumedQueued = 0
    public var requeuedAfterCrash = 0
    public var resumedScheduled = 0
    public var failedOutOfAttempts = 0
}

/// What a client asks to run.
public struct JobSpec: Sendable {
    public var kind: String
    public var input: JSONValue
    public var webhook: WebhookTarget?
    public var owner: String?
    public var options: JobOptions

    public init(kind: String, input: JSONValue, webhook: WebhookTarget? = nil, owner: String? = nil, options: JobOptions = JobOptions()) {
        self.kind = kind
        self.input = input
        self.webhook = webhook
        self.owner = owner
        self.options = options
    }
}

/// A spec whose kind and input were checked, with the work it will run.
public struct PreparedJob: Sendable {
    public let spec: JobSpec
    let work: JobWork
}
