import Dispatch
import Foundation
import Logging

/// Records what happens to jobs once they are accepted: a start, a failed attempt that will be
/// retried, a final state. As River splits it, the pool only hands work to free workers, a job
/// runs itself (its state machine decides every transition, under its own lock), and this
/// completer is the one place that writes those outcomes to the store and moves a job from
/// live memory to the cache once its final state is durable.
final class JobCompleter: Sendable {
    private let store: any JobStore
    private let live: LiveJobs
    private let cache: FinishedJobCache
    private let counts: JobCounts
    private let metrics: JobMetrics
    private let logger: Logger
    private let completionHandler: (any CompletionHandler)?
    /// Where a final state is announced, once durable.
    private let changes: JobChangeFeed
    /// Time limits fire here, off the loop and the workers.
    private let timers: DispatchQueue

    init(store: any JobStore, live: LiveJobs, cache: FinishedJobCache, counts: JobCounts, metrics: JobMetrics,
         logger: Logger, completionHandler: (any CompletionHandler)?, changes: JobChangeFeed, timers: DispatchQueue) {
        self.changes = changes
        self.store = store
        self.live = live
        self.cache = cache
        self.counts = counts
        self.metrics = metrics
        self.logger = logger
        self.completionHandler = completionHandler
        self.timers = timers
    }

    /// A worker started the job's current attempt (on that worker's thread); `snapshot` is the
    /// job as it started (the pool has it already: taking another costs the job's lock and a copy).
    func started(_ job: Job, snapshot: JobSnapshot) {
        let startedAt = snapshot.startedAt ?? Date()
        if let limit = job.options.timeLimitSeconds {
            timers.asyncAfter(deadline: .now() + limit) { [weak job, attempt = snapshot.attempt] in
                job?.stop(.timeLimit(seconds: limit), attempt: attempt)
            }
        }
        metrics.started(kind: job.kind, queueWait: .microseconds(Int64(startedAt.timeIntervalSince(job.createdAt) * 1_000_000)))
        // A shared queue's claim wrote the start already (status, node and time, in one
        // statement); a store holding the job object reads the start from it.
        if !store.workQueue.isShared, !store.holdsJobs {
            store.apply(.started(job.key, attempt: snapshot.attempt, at: startedAt), whenDurable: nil)
        }
    }

    /// An attempt failed in a way worth retrying; the job is scheduled for `plan.due`.
    func retrying(_ job: Job, plan: RetryPlan) {
        metrics.counter("jobpool_job_retries_total", [("kind", job.kind)]).increment()
        logger.info("Job attempt failed; retrying", metadata: [
            "job.id": "\(job.id)", "attempt": "\(plan.failedAttempt)", "error.code": "\(plan.failure.code)",
            "next_attempt_at": "\(plan.due)",
        ])
        store.apply(.retrying(job.key, attempt: plan.failedAttempt, startedAt: plan.startedAt, error: plan.failure,
                              at: Date(), nextAttemptAt: plan.due), whenDurable: nil)
    }

    /// The job reached its final state: record it with its webhook event in one write (the
    /// outbox), then hand the event to the deliverer. The write carries the attempt number, so a
    /// stale attempt's outcome changes nothing.
    func finished(_ job: Job, final: JobSnapshot) {
        let runTime = final.startedAt.flatMap { started in final.finishedAt.map { Duration.microseconds(Int64($0.timeIntervalSince(started) * 1_000_000)) } }
        metrics.finished(kind: job.kind, status: final.status, runTime: runTime)
        if final.error == .interrupted, store.isDurable {
            // A drain stopped it: it runs again after the restart, as the same attempt.
            store.apply(.requeued(job.key, attempt: final.attempt, interrupted: nil), whenDurable: nil)
            return
        }
        if job.isFinalRecorded {
            // Written already, by the conditional cancel that decided it (and its event with it).
            if !store.holdsJobs { cache.insert(job, snapshot: final) }
            live.remove(job)
            changes.finished(job, status: final.status)
            return
        }
        let event = job.webhook != nil ? completionHandler?.makeEvent(for: job, final: final) : nil
        let change = StoreChange.finished(job.key, attempt: final.attempt, startedAt: final.startedAt, status: final.status,
                                          result: final.result, error: final.error, at: final.finishedAt ?? Date(), event: event,
                                          owner: job.owner, kind: job.kind)
        store.apply(change) { [self] result in
            switch result {
            case .success:
                // Durable: the store answers for it from now on; memory keeps it only as a cache
                // (a store holding the job object itself needs no second copy). Only now is the
                // final state announced, and its webhook handed on.
                if !store.holdsJobs { cache.insert(job, snapshot: final) }
                live.remove(job)
                changes.finished(job, status: final.status)
                if let event { completionHandler?.eventCommitted(event, job: job) }
            case .failure(let error) where error.isStale:
                // Another node took the job over (this node's lease lapsed): its outcome is not
                // this attempt's to tell. No event, no webhook; the store answers for the job.
                metrics.counter("jobpool_stale_writes_total", []).increment()
                logger.warning("A job's outcome was not recorded: the job is no longer this node's", metadata: [
                    "job.id": "\(job.id)", "attempt": "\(final.attempt)", "status": "\(final.status.rawValue)",
                ])
                live.remove(job)
            case .failure:
                // Failed writes of a final state are retried by the store until they succeed.
                return
            }
        }
    }

    /// Jobs the store no longer has (retention, or eviction from the in-memory store).
    func removed(_ jobs: [StoredJobSummary], evicted: Bool) {
        for summary in jobs { counts.removed(JobCounts.Key(owner: summary.owner, kind: summary.kind, state: summary.status)) }
        let ids = Set(jobs.map(\.key.id))
        cache.remove(ids)
        completionHandler?.jobsPurged(ids)
        if evicted { metrics.counter("jobpool_memory_store_evictions_total", []).increment(by: jobs.count) }
    }
}
