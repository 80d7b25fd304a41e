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

        public init(workers: Int = 8, maxQueued: Int = 100_000) {
            self.workers = workers
            self.maxQueued = maxQueued
        }
    }

    private let kinds: [String: any JobKind]
    private let registry = JobRegistry()
    private let pool: WorkerPool
    private let store: any JobStore
    private let logger: Logger
    private let completionHandler: (any CompletionHandler)?
    public let metrics: JobMetrics

    /// - Parameters:
    ///   - store: where jobs are kept; ``MemoryStore`` keeps nothing.
    ///   - deferWakeUp: see ``WorkerPool/init(workerCount:maxQueued:logger:deferWakeUp:onStart:)``.
    ///   - completionHandler: gets the completion of every job that has a webhook.
    public init(configuration: Configuration, kinds: [any JobKind], store: any JobStore = MemoryStore(), logger: Logger,
                deferWakeUp: WorkerPool.WakeUpDeferral? = nil, completionHandler: (any CompletionHandler)? = nil,
                metrics: JobMetrics = .none) {
        self.completionHandler = completionHandler
        self.metrics = metrics
        self.kinds = Dictionary(kinds.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.store = store
        let isDurable = store.isDurable
        let recordStart: @Sendable (Job) -> Void = { job in
            let startedAt = job.snapshot().startedAt ?? Date()
            metrics.started(kind: job.kind, queueWait: .microseconds(Int64(startedAt.timeIntervalSince(job.createdAt) * 1_000_000)))
            if isDurable {
                store.apply(StoreChange.started(job.key, attempt: job.attempt, at: startedAt), whenDurable: nil)
            }
        }
        self.pool = WorkerPool(workerCount: configuration.workers, maxQueued: configuration.maxQueued,
                               logger: logger, deferWakeUp: deferWakeUp, onStart: recordStart)
        self.logger = logger
    }

    /// The kind names clients may submit, sorted.
    public var kindNames: [String] { kinds.keys.sorted() }

    /// True while the store accepts writes.
    public var isStoreWritable: Bool { store.isWritable }

    public func start() { pool.start() }

    /// Checks a job and queues it once it is durable.
    ///
    /// Returns the job at once when the store keeps nothing (``MemoryStore``). Otherwise returns
    /// `nil` and calls `whenDurable` (on the store's thread) once the job is committed and
    /// queued, or with ``SubmitError/storeUnavailable(_:)``. Nothing is created unless it succeeds.
    public func submit(kind: String, input: JSONValue, webhook: WebhookTarget? = nil, maxAttempts: Int = 3, owner: String? = nil,
                       whenDurable: @escaping @Sendable (Result<Job, SubmitError>) -> Void) throws(SubmitError) -> Job? {
        guard let jobKind = kinds[kind] else { throw SubmitError.unknownKind(kind, known: kindNames) }
        let work: JobWork
        do throws(InputError) {
            work = try jobKind.makeWork(input: input)
        } catch {
            throw SubmitError.invalidInput(error)
        }
        do throws(PoolError) {
            try pool.reserveSlot()
        } catch {
            switch error {
            case .queueFull(let limit): throw SubmitError.queueFull(limit: limit)
            case .shuttingDown: throw SubmitError.shuttingDown
            }
        }
        let job = Job(kind: kind, input: input, createdAt: registry.nextCreationTime(), webhook: webhook,
                      owner: owner, maxAttempts: maxAttempts, work: work)
        watchCompletion(of: job)
        guard store.isDurable else {
            accept(job)
            return job
        }
        store.apply(.submitted(job.record())) { [self] result in
            switch result {
            case .success:
                accept(job)
                whenDurable(.success(job))
            case .failure(let error):
                pool.releaseSlot()
                whenDurable(.failure(.storeUnavailable(error.message)))
            }
        }
        return nil
    }

    /// Makes a durable job visible and runnable.
    private func accept(_ job: Job) {
        metrics.submitted(kind: job.kind)
        registry.insert(job)
        pool.enqueue(reserved: job)
        logger.debug("Job queued", metadata: ["job.id": "\(job.id)", "job.kind": "\(job.kind)"])
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
            store.apply(.requeued(job.key, attempt: job.attempt, interrupted: nil), whenDurable: nil)
            return
        }
        let event = job.webhook != nil ? completionHandler?.makeEvent(for: job, final: final) : nil
        let change = StoreChange.finished(job.key, attempt: job.attempt, startedAt: final.startedAt, status: final.status,
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
            let job = Job(restoring: record, webhookStatus: status, work: work)
            registry.insert(job)
            guard record.status == .queued else { continue }
            watchCompletion(of: job)
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
            pool.enqueueRecovered(job)
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
        registry.remove(Set(ids.map(\.id)))
        return ids.count
    }

    /// The job with this ID, if it exists.
    public func job(withID id: JobID) -> Job? { registry.job(withID: id) }

    /// A page of jobs, newest first.
    public func list(filter: JobFilter = JobFilter(), limit: Int = 50, after cursor: JobCursor? = nil) -> JobPage {
        registry.list(filter: filter, limit: limit, after: cursor)
    }

    public var statistics: WorkerPool.Statistics { pool.statistics }

    /// True while the worker pool takes new jobs.
    public var isAccepting: Bool { pool.isAccepting }

    /// Stops taking jobs, gives running ones `grace` to finish, then interrupts them. Blocks;
    /// call it off the event loop. Returns how many queued jobs never ran.
    @discardableResult
    public func drain(grace: Duration) -> Int {
        let neverRan = pool.drain(grace: grace)
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
    case shuttingDown
    /// The store could not write the job; nothing was acknowledged.
    case storeUnavailable(String)
}

/// What ``JobExecutor/recover(_:)`` did.
public struct RecoveryReport: Sendable, Equatable {
    public var loaded = 0
    public var resumedQueued = 0
    public var requeuedAfterCrash = 0
    public var failedOutOfAttempts = 0
}
