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
        /// The wait between attempts after a retryable failure.
        public var retryBackoff: RetryBackoff
        /// The most bytes of recently finished or read jobs kept in memory (`--cache-bytes`);
        /// the store answers for the rest.
        public var finishedCacheBytes: Int
        /// Threads that run the store's reads, off the event loop.
        public var storeReaders: Int

        public init(workers: Int = 8, maxQueued: Int = 100_000, maxQueuedPerOwner: Int? = nil,
                    retryBackoff: RetryBackoff = RetryBackoff(),
                    finishedCacheBytes: Int = 64 << 20, storeReaders: Int = 2) {
            self.finishedCacheBytes = finishedCacheBytes
            self.storeReaders = storeReaders
            self.workers = workers
            self.maxQueued = maxQueued
            self.maxQueuedPerOwner = maxQueuedPerOwner
            self.retryBackoff = retryBackoff
        }
    }

    private let kinds: [String: any JobKind]
    /// Queued, scheduled and running jobs: the work this process will do.
    let live = LiveJobs()
    /// Submissions committed to a shared store, not yet live here (see ``AcceptanceGate``).
    private let acceptance = AcceptanceGate()
    /// Recently finished or read jobs, in front of the store.
    let cache: FinishedJobCache
    /// Jobs other nodes run that someone here watches (a shared store only).
    let remote = RemoteJobs()
    /// Runs the store's reads off the event loop.
    public let reader: StoreReader
    private let pool: WorkerPool
    let store: any JobStore
    let logger: Logger
    let completionHandler: (any CompletionHandler)?
    /// Records outcomes: the one writer of what happens to accepted jobs.
    private let completer: JobCompleter
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
    public init(configuration: Configuration, kinds: [any JobKind], store: any JobStore = MemoryJobStore(), logger: Logger,
                deferWakeUp: WorkerPool.WakeUpDeferral? = nil, completionHandler: (any CompletionHandler)? = nil,
                metrics: JobMetrics = .none, changes: JobChangeFeed = JobChangeFeed()) {
        self.completionHandler = completionHandler
        self.changes = changes
        self.metrics = metrics
        self.kinds = Dictionary(kinds.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.store = store
        self.cache = FinishedJobCache(capacity: configuration.finishedCacheBytes)
        self.reader = StoreReader(threads: configuration.storeReaders)
        self.logger = logger
        // Built from the already-set properties, named through self: every one is initialized.
        let completer = JobCompleter(store: store, live: self.live, cache: self.cache, counts: self.counts, metrics: metrics,
                                     logger: logger, completionHandler: completionHandler, changes: changes, timers: self.timers)
        self.completer = completer
        let pool = WorkerPool(workerCount: configuration.workers, maxQueued: configuration.maxQueued,
                              maxQueuedPerOwner: configuration.maxQueuedPerOwner, logger: logger, deferWakeUp: deferWakeUp, work: store.workQueue,
                              backoff: configuration.retryBackoff, onStart: completer.started(_:snapshot:))
        self.pool = pool
        pool.onRetry { [weak self] job, plan in
            completer.retrying(job, plan: plan)
            self?.schedule(job, at: plan.due)
        }
        store.workQueue.attach(WorkQueueHost(
            freeWorkers: { [weak pool] in pool?.freeWorkers ?? 0 },
            wakeWorkers: { [weak pool] in pool?.wakeForClaimedWork() },
            makeJob: { [weak self] record in self?.makeClaimedJob(record) },
            waitingJobs: { [live] in live.waiting() },
            claimedElsewhere: { [weak self] jobs in self?.handOff(jobs) },
            maxQueued: configuration.maxQueued, maxQueuedPerOwner: configuration.maxQueuedPerOwner,
            rescued: { [weak self] records in self?.rescued(records) }))
        if let memory = store as? MemoryJobStore {
            memory.onEviction { evicted in completer.removed(evicted, evicted: true) }
        }
        // A store shared by several nodes: the event stream serves its log, and what the other
        // nodes do reaches this one.
        if let position = store.eventLogPosition { changes.useStoredEvents(after: position) }
        store.connect(ClusterFeed(
            cancelsRequested: { [weak self] ids in self?.cancelRequestedElsewhere(ids) },
            jobEvents: { [weak self] events in self?.take(events) },
            watchedJobsMayHaveChanged: { [weak self] in self?.refreshWatched() },
            eventNeed: { [weak self] in self?.storedEventNeed ?? EventLogNeed(isNeeded: false, streamsAfter: nil, keeping: 0) },
            eventsSkipped: { [weak self] position in self?.storedEventsSkipped(through: position) },
            eventLogSettled: { [changes] position in changes.storedLogSettled(position) }))
    }

    /// The kind names clients may submit, sorted.
    public var kindNames: [String] { kinds.keys.sorted() }

    /// True while the store accepts writes.
    public var isStoreWritable: Bool { store.isWritable }

    /// This node's ID and the live node count, when the store is shared by several nodes.
    public var cluster: ClusterMembership? { store.cluster }

    public func start() {
        reader.start()
        pool.start()
    }

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
    /// Returns the jobs at once when the store answers at once (``MemoryJobStore``). Otherwise
    /// returns `nil` and calls `whenDurable` (on the store's thread) once the jobs are committed
    /// and queued, or with ``SubmitError/storeUnavailable(_:)``. Nothing is created unless it succeeds.
    public func submit(_ prepared: [PreparedJob], whenDurable: @escaping @Sendable (Result<[Job], SubmitError>) -> Void) throws(SubmitError) -> [Job]? {
        let now = Date()
        let runsNow = prepared.count { ($0.spec.options.runAt ?? now) <= now }
        // One request submits for one owner, so its first job's owner is everyone's.
        let owner = prepared.first?.spec.owner
        precondition(prepared.allSatisfy { $0.spec.owner == owner }, "one submission, one owner: queue places are counted per owner")
        do throws(PoolError) {
            try pool.reserveSlot(count: runsNow, owner: owner)
        } catch {
            throw SubmitError(error)
        }
        let jobs = prepared.map { item in
            let spec = item.spec
            let scheduled = (spec.options.runAt ?? now) > now
            var options = spec.options
            if !scheduled { options.runAt = nil }
            let job = Job(kind: spec.kind, input: spec.input, createdAt: live.nextCreationTime(now: now), webhook: spec.webhook,
                          owner: spec.owner, options: options, status: scheduled ? .scheduled : .queued,
                          onStateChange: stateChangeHook, work: item.work)
            watchCompletion(of: job)
            return job
        }
        // The in-memory store answers before `apply` returns; a durable one after its commit.
        // Either way the jobs are accepted only once the store has them.
        let reply = Mutex<(returned: Bool, inline: Result<[Job], SubmitError>?)>((false, nil))
        // A shared store's claimers may take the jobs between their commit and their acceptance.
        let ids = store.workQueue.isShared ? jobs.map(\.id) : []
        let accepting = ids.isEmpty ? nil : acceptance.enter(ids)
        store.submit(jobs) { [self] result in
            let outcome: Result<[Job], SubmitError>
            switch result {
            case .success:
                for job in jobs { accept(job) }
                outcome = .success(jobs)
            case .failure(let error):
                pool.releaseSlot(count: runsNow, owner: owner)
                for job in jobs { counts.removed(job, state: job.snapshot().status) }
                outcome = .failure(SubmitError(error))
            }
            if let accepting { acceptance.leave(ids, accepting) }
            let later = reply.withLock { reply -> Bool in
                if reply.returned { return true }
                reply.inline = outcome
                return false
            }
            if later { whenDurable(outcome) }
        }
        let inline = reply.withLock { reply in
            reply.returned = true
            return reply.inline
        }
        switch inline {
        case .success(let jobs): return jobs
        case .failure(let error): throw error
        case nil: return nil
        }
    }

    /// Each job's state changes go to the counts and to the change feed; a final state goes to
    /// the feed only once it is durable (the completer tells it), so that an outcome the store
    /// refused as stale is never announced.
    private var stateChangeHook: JobStateChangeHook {
        let counts = counts.hook
        return { [changes] job, from, to in
            counts(job, from, to)
            if !to.isFinished { changes.stateChanged(job, from: from, to: to) }
        }
    }

    /// Makes a durable job visible, and runnable now or when due.
    private func accept(_ job: Job) {
        metrics.submitted(kind: job.kind)
        live.insert(job)
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

    /// The live job an unexpired idempotency key of this owner created, if any: an answer
    /// without the store. ``loadJob(forIdempotencyKey:owner:)`` also asks the store.
    public func liveJob(forIdempotencyKey key: String, owner: String?) -> Job? {
        live.job(forIdempotencyKey: key, owner: owner, now: Date())
    }

    /// Records the job's final state, with its webhook event in the same transaction, then hands
    /// the event to the deliverer.
    private func watchCompletion(of job: Job) {
        // Handed the job rather than capturing it (see ``Job/whenFinished(_:)``).
        job.whenFinished { [weak self] job, final in
            // Only a job this node holds records its end: one handed off to another node
            // finishes there (this handle only hears of it, see ``take(_:)``), and one the
            // in-memory store handed out in the instant between its admission and its
            // acceptance here (a cancel found it through `heldJob`) was never accepted. SQLite
            // hands out neither (a read there gives a detached copy): the look-up, a lock and a
            // hash per job, is skipped for it.
            guard let self, !(store.workQueue.isShared || store.holdsJobs) || live.job(withID: job.id) === job else { return }
            completer.finished(job, final: final)
        }
    }

    /// Resumes the unfinished work the store handed over at start: queued jobs in order, and
    /// scheduled ones when due. A store one process owns has already re-queued the jobs a dead
    /// process left running (see ``JobStore/requeueInterrupted(at:)``); any still `running` here
    /// had no attempt left, and fail with `interrupted`. A shared store's running jobs are left
    /// alone (they may be a live node's; its rescue takes back a dead node's). Call before
    /// ``start()``.
    public func recover(_ stored: StoredState, requeuedAfterCrash: Int = 0) -> RecoveryReport {
        var report = RecoveryReport()
        report.requeuedAfterCrash = requeuedAfterCrash
        counts.seed(stored.counts)
        let webhookStatus = Dictionary(stored.webhookEvents.map {
            ($0.jobID, WebhookStatus(url: $0.url, state: $0.state, attempts: $0.attempts.count))
        }, uniquingKeysWith: { first, _ in first })
        for original in stored.jobs {
            var record = original
            live.noteCreationTime(record.createdAt)
            guard !record.status.isFinished else { continue } // a start loads only unfinished jobs
            // A running job in a shared store may be another node's, alive: only the store's
            // rescue takes it back, once that node's lease has expired. Waiting jobs are kept
            // here as handles (for waiters, and a scheduled job's timer), but the claimer
            // claims them from the table.
            if store.workQueue.isShared, record.status == .running { continue }
            let outOfAttempts = record.status == .running
            if outOfAttempts {
                // Shown queued for the moment it takes to fail it; the counts follow.
                record.status = .queued
                counts.shift(owner: record.owner, kind: record.kind, from: .running, to: .queued)
            }
            let job = restore(record, webhookStatus: webhookStatus[record.id])
            if record.status == .scheduled {
                schedule(job, at: record.nextAttemptAt ?? Date())
                report.resumedScheduled += 1
            } else if outOfAttempts {
                job.fail(JobFailure(code: "interrupted", message: "The server stopped while this job was running, and it had used all \(record.maxAttempts) of its attempts (max_attempts)."))
                report.failedOutOfAttempts += 1
            } else {
                report.resumedQueued += 1
                pool.enqueueAccepted(job)
            }
        }
        report.loaded = stored.jobs.count
        return report
    }

    /// A stored job made live again, to run here: its work made from its input, its
    /// completion watched.
    private func restore(_ record: JobRecord, webhookStatus: WebhookStatus?) -> Job {
        let work: JobWork
        if let kind = kinds[record.kind], let made = try? kind.makeWork(input: record.input) {
            work = made
        } else {
            work = { [kind = record.kind] _ throws(JobFailure) in
                throw JobFailure(code: "unknown_kind", message: "This server no longer runs jobs of kind '\(kind)'.")
            }
        }
        let status = webhookStatus ?? record.webhook.map { WebhookStatus(url: $0.url, state: .pending, attempts: 0) }
        let job = Job(restoring: record, webhookStatus: status, onStateChange: stateChangeHook, work: work)
        live.insert(job)
        watchCompletion(of: job)
        return job
    }

    /// The job to run for a record a shared queue claimed for this node: the live job if this
    /// node accepted it (so that its waiters see it run; a scheduled one whose timer has not
    /// fired yet falls due now), or one made from the record, as ``recover(_:requeuedAfterCrash:)``
    /// does. Either way it is queued in memory, for the pool to mark running.
    ///
    /// A live job that is no longer waiting is an earlier attempt this node still holds: one
    /// that ran here under a lease that lapsed, whose refused (stale) outcome has not come
    /// back yet, while the rescue re-queued the job and this node, registered again, claimed
    /// it. The claim is a new attempt: it gets a job of its own, made from the record (the old
    /// object, running or finished, would never run again, and the claimed row would stay
    /// `running` on a live node for good). When the old attempt's refused outcome comes back,
    /// removing the old object from `live` leaves the new one (``LiveJobs/remove(_:)`` checks
    /// identity).
    ///
    /// A waiting copy of an earlier attempt is not reused either: the job was accepted here,
    /// another node claimed it (this node learns that only at its next look at the table), that
    /// node died, and the rescue re-queued it as the next attempt, which this node now claims.
    /// The copy would run as the old attempt, whose every write is refused as stale. It is
    /// handed off like any job claimed elsewhere (its waiters follow the job through the
    /// store's log), and the claim gets a job of its own.
    ///
    /// Nil for the attempt this node runs already: a shared queue starts a claim's jobs while
    /// the claim commits, and a claim lost with its connection in the middle of that commit,
    /// not kept by the database, left the job queued while it ran here; claimed again by this
    /// node, it is the same attempt, whose outcome the running copy writes under the new
    /// claim's token. A second copy would run the job twice at once, and either copy's write
    /// would end the claim that the other's still needs.
    func makeClaimedJob(_ record: JobRecord) -> Job? {
        // Claimed between its commit and its acceptance here: the live job is about to exist.
        acceptance.waitUntilSettled(record.id)
        if let job = live.job(withID: record.id) {
            let held = job.snapshot()
            if held.status == .running, held.attempt == record.attempt { return nil }
            if [.queued, .scheduled].contains(held.status) {
                guard held.attempt != record.attempt else {
                    _ = job.markDue()
                    return job
                }
                handOff([job])
            }
        }
        var waiting = record
        waiting.status = .queued
        waiting.startedAt = nil
        waiting.nextAttemptAt = nil
        counts.seed([JobCounts.Key(owner: record.owner, kind: record.kind, state: .queued): 1])
        return restore(waiting, webhookStatus: nil)
    }

    /// Jobs accepted here that another node claimed (or finished): the store answers for them
    /// from now on. A job that left the waiting states meanwhile (it runs here) stays.
    func handOff(_ jobs: [Job]) {
        var handed: [Job] = []
        for job in jobs {
            let status = job.snapshot().status
            guard status == .queued || status == .scheduled else { continue }
            live.remove(job)
            counts.removed(job, state: status)
            // Watched from the moment it leaves the live jobs, so that a request arriving
            // meanwhile finds this handle, not a second one that this pass would not read.
            handed.append(remote.register(job))
        }
        // Whoever waits on them here hears of their end from the store's log; each is read once
        // now, since the other node may have finished it before this pass (no later event then).
        // Together: on two nodes, half the jobs submitted to one are handed off by the other.
        refresh(handed)
    }

    /// Jobs a shared store's rescue took back from dead nodes: counted in
    /// `jobpool_rescued_jobs_total` (by outcome), and announced here as `job.queued` or
    /// `job.failed`. A job running here under a lapsed lease keeps running; its outcome will
    /// be refused as stale.
    func rescued(_ records: [JobRecord]) {
        for record in records {
            metrics.counter("jobpool_rescued_jobs_total", [("outcome", record.status == .queued ? "requeued" : "failed")]).increment()
            logger.info("Job rescued from a node whose lease expired", metadata: [
                "job.id": "\(record.id)", "status": "\(record.status.rawValue)", "attempt": "\(record.attempt)",
            ])
            let job = live.job(withID: record.id)
                ?? Job(restoring: record, webhookStatus: nil, onStateChange: nil, work: { _ throws(JobFailure) in .null })
            changes.rescued(job, status: record.status)
        }
    }

    /// Removes up to `limit` jobs that finished before `cutoff`, oldest first, except those
    /// whose webhook is still pending. Blocks on the store: call it on retention's thread.
    /// Returns how many were removed.
    @discardableResult
    public func purgeFinished(before cutoff: Date, limit: Int) throws(StoreError) -> Int {
        let expired = try store.purgeExpired(finishedBefore: cutoff, limit: limit)
        guard !expired.isEmpty else { return 0 }
        completer.removed(expired, evicted: false)
        return expired.count
    }

    // MARK: - Reads

    /// The job with this ID if memory has it (live, or in the cache): an answer without the
    /// store, cheap enough for the event loop. Otherwise ask ``loadJob(withID:)``.
    public func cachedJob(withID id: JobID) -> Job? {
        live.job(withID: id) ?? cache.job(withID: id) ?? remote.job(withID: id)
    }

    /// The job with this ID, from memory or else from the store. Blocks on the store: call it
    /// on a ``reader`` thread, never on the event loop.
    public func loadJob(withID id: JobID) throws(StoreError) -> Job? {
        if let job = cachedJob(withID: id) { return job }
        if store.holdsJobs {
            guard let job = store.heldJob(withID: id) else { return nil }
            if job.snapshot().status.isFinished { cache.insert(job) } // read once, answered from memory after
            return job
        }
        guard let stored = try store.job(withID: id) else { return nil }
        return materialize(stored)
    }

    /// The job an unexpired idempotency key of this owner created, from memory or the store.
    /// Blocks: call it on a ``reader`` thread.
    public func loadJob(forIdempotencyKey key: String, owner: String?) throws(StoreError) -> Job? {
        if let job = liveJob(forIdempotencyKey: key, owner: owner) { return job }
        guard let stored = try store.job(idempotencyKey: key, owner: owner, now: Date()) else { return nil }
        return materialize(stored)
    }

    /// The job's webhook event as stored, with its attempts. Blocks: call it on a reader thread.
    public func storedWebhookEvent(of id: JobID) throws(StoreError) -> WebhookEventRecord? {
        try store.webhookEvent(of: id)
    }

    /// Fills the stored event's missing body (``JobStore/fillWebhookBody(of:with:)``). Blocks:
    /// call it on a reader thread.
    public func fillWebhookBody(of id: JobID, with rendered: [UInt8]) throws(StoreError) -> [UInt8]? {
        try store.fillWebhookBody(of: id, with: rendered)
    }

    /// A stored job as a handle. A finished one joins the cache; a live one is the live handle
    /// (a job the store had before it was accepted here is looked up again, then shown as stored).
    private func materialize(_ stored: StoredJob) -> Job {
        let record = stored.record
        if let job = cachedJob(withID: record.id) ?? store.heldJob(withID: record.id) { return job }
        let job = Job(restoring: record, webhookStatus: stored.webhookStatus, onStateChange: nil, work: { _ throws(JobFailure) in .null })
        if record.status.isFinished {
            cache.insert(job)
        } else if store.eventLogPosition != nil {
            return watchRemote(job)
        }
        return job
    }

    /// A page of jobs, newest first, from the store, with live jobs shown as they stand in
    /// memory (a state change reaches the store a few milliseconds after). Blocks: call it on a
    /// ``reader`` thread.
    public func list(filter: JobFilter = JobFilter(), limit: Int = 50, after cursor: JobCursor? = nil) throws(StoreError) -> JobPage {
        let stored = try store.jobs(matching: filter, limit: limit + 1, after: cursor)
        var page: [JobSnapshot] = []
        for item in stored.prefix(limit) {
            let snapshot = cachedJob(withID: item.record.id)?.snapshot() ?? JobSnapshot(stored: item)
            // A job whose newer state no longer matches leaves this page.
            guard filter.status == nil || snapshot.status == filter.status else { continue }
            page.append(snapshot)
        }
        let next = stored.count > limit ? stored[limit - 1].record.key : nil
        return JobPage(jobs: page, nextCursor: next)
    }

    public var statistics: WorkerPool.Statistics { pool.statistics }

    /// One owner's running jobs and longest-waiting queued job.
    public func statistics(owner: String?) -> (running: Int, oldestQueuedAt: Date?) { pool.statistics(owner: owner) }

    /// True while the worker pool takes new jobs.
    public var isAccepting: Bool { pool.isAccepting }

    /// Stops taking jobs, gives running ones `grace` to finish, then interrupts them. Blocks;
    /// call it off the event loop. Returns how many queued jobs never ran.
    @discardableResult
    public func drain(grace: Duration, beforeInterrupting: @Sendable () -> Void = {}) -> Int {
        let neverRan = pool.drain(grace: grace, beforeInterrupting: beforeInterrupting)
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
    /// The job's idempotency key was taken at the same moment by another request with that
    /// key, whose job is stored (see ``StoreError/isIdempotencyKeyTaken``); nothing was created.
    case idempotencyKeyTaken(String)
}

extension SubmitError {
    init(_ error: PoolError) {
        switch error {
        case .queueFull(let limit): self = .queueFull(limit: limit)
        case .ownerQueueFull(let limit): self = .ownerQueueFull(limit: limit)
        case .shuttingDown: self = .shuttingDown
        }
    }

    /// A store's refusal: a full queue (checked by a shared store), or the store unavailable.
    init(_ error: StoreError) {
        if let limit = error.queueLimit {
            self.init(limit)
        } else if error.isIdempotencyKeyTaken {
            self = .idempotencyKeyTaken(error.message)
        } else {
            self = .storeUnavailable(error.message)
        }
    }
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
