import DequeModule
import Foundation
import Synchronization

/// The store for `--store memory`: the same questions answered from tables in this process's
/// memory, so nothing survives a restart.
///
/// It is bounded twice: retention deletes finished jobs as it does in SQLite, and past
/// `maxJobs` the oldest finished jobs are evicted at once (counted by `onEvicted`). Live jobs
/// are never evicted; when every job held is live, a submission is refused with a message
/// rather than letting memory grow without bound.
///
/// Writes apply at once and call `whenDurable` before `apply` returns.
public final class MemoryJobStore: JobStore {
    /// A class, so that the table's values are one pointer each: growing a dictionary of a
    /// million large structs moved all of them at once, a pause of tens of milliseconds on the
    /// thread that submitted (the event loop's).
    private final class Entry {
        var record: JobRecord
        var webhookEvent: WebhookEventRecord?

        init(record: JobRecord, webhookEvent: WebhookEventRecord? = nil) {
            self.record = record
            self.webhookEvent = webhookEvent
        }
    }

    private struct IdempotencyScope: Hashable {
        var owner: String?
        var key: String
    }

    private struct Tables {
        var byID: [JobID: Entry] = [:]
        /// Every key held, ascending `(created_at, id)`; entries whose job is gone are skipped
        /// and compacted away once they are half of it.
        var order: [JobKey] = []
        var removedInOrder = 0
        /// Finished jobs in the order they finished: eviction and retention take from the front.
        var finishedOrder = Deque<JobKey>()
        var idempotency: [IdempotencyScope: JobID] = [:]
        var liveCount = 0

        mutating func insert(_ record: JobRecord) {
            byID[record.id] = Entry(record: record, webhookEvent: nil)
            if let last = order.last, (last.createdAt, last.id) > (record.createdAt, record.id) {
                // Submitters on two threads may arrive out of creation order.
                order.insert(JobKey(id: record.id, createdAt: record.createdAt), at: Self.insertionIndex(of: record.createdAt, record.id, in: order))
            } else {
                order.append(JobKey(id: record.id, createdAt: record.createdAt))
            }
            if let idempotency = record.options.idempotency {
                self.idempotency[IdempotencyScope(owner: record.owner, key: idempotency.key)] = record.id
            }
            if record.status.isFinished { finishedOrder.append(JobKey(id: record.id, createdAt: record.createdAt)) } else { liveCount += 1 }
        }

        /// Changes a job's record in place, keeping the finished order in step.
        ///
        /// No counts are kept here: the executor keeps them as jobs change, and only a start
        /// reads them from the store (``loadUnfinished()`` counts then), so keeping them per
        /// change would cost two hashed look-ups per transition for nothing.
        mutating func update(_ id: JobID, _ change: (Entry) -> Void) {
            guard let entry = byID[id] else { return }
            let before = entry.record.status
            change(entry)
            let record = entry.record
            if !before.isFinished, record.status.isFinished {
                finishedOrder.append(JobKey(id: id, createdAt: record.createdAt))
                liveCount -= 1
            }
        }

        @discardableResult
        mutating func remove(_ id: JobID) -> StoredJobSummary? {
            guard let entry = byID.removeValue(forKey: id) else { return nil }
            let record = entry.record
            if let idempotency = record.options.idempotency {
                let scope = IdempotencyScope(owner: record.owner, key: idempotency.key)
                if self.idempotency[scope] == id { self.idempotency[scope] = nil }
            }
            if !record.status.isFinished { liveCount -= 1 }
            while let first = finishedOrder.first, byID[first.id] == nil { finishedOrder.removeFirst() }
            removedInOrder += 1
            if removedInOrder > 1024, removedInOrder * 2 > order.count {
                order.removeAll { byID[$0.id] == nil }
                removedInOrder = 0
            }
            return StoredJobSummary(key: JobKey(id: id, createdAt: record.createdAt), owner: record.owner, kind: record.kind,
                                    status: record.status)
        }

        static func insertionIndex(of createdAt: Date, _ id: JobID, in order: [JobKey]) -> Int {
            var low = 0, high = order.count // first index not before (createdAt, id)
            while low < high {
                let middle = (low + high) / 2
                if (order[middle].createdAt, order[middle].id) < (createdAt, id) { low = middle + 1 } else { high = middle }
            }
            return low
        }
    }

    /// The most jobs held; past it the oldest finished ones are evicted.
    public let maxJobs: Int
    private let tables = Mutex(Tables())
    private let evictionHandler = Mutex<(@Sendable ([StoredJobSummary]) -> Void)?>(nil)

    /// The due work: this process owns the store, so it is a queue in memory.
    public let workQueue: any WorkQueue

    /// - Parameters:
    ///   - maxJobs: the most jobs held, live and finished (`--memory-max-jobs`).
    ///   - agingStep: how long a queued job waits to gain one priority level (see ``PriorityQueue``).
    public init(maxJobs: Int = 1_000_000, agingStep: Duration = .seconds(10)) {
        self.maxJobs = max(1, maxJobs)
        self.workQueue = LocalWorkQueue(agingStep: agingStep)
    }

    /// Tells `handler` of the finished jobs evicted to stay within `maxJobs`, outside the lock.
    public func onEviction(_ handler: @escaping @Sendable ([StoredJobSummary]) -> Void) {
        evictionHandler.withLock { $0 = handler }
    }

    public var isDurable: Bool { false }
    public var isWritable: Bool { true }
    /// Nothing to start: writes apply on the caller's thread.
    public func start() {}

    public func close() {}

    /// Jobs held now, live and finished.
    public var count: Int { tables.withLock { $0.byID.count } }

    public func apply(_ change: StoreChange, whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        var evicted: [StoredJobSummary] = []
        let outcome = tables.withLock { tables -> Result<Void, StoreError> in
            switch change {
            case .submitted(let records):
                // Make room first: the oldest finished jobs go; live ones never do.
                while tables.byID.count + records.count > maxJobs, let oldest = tables.finishedOrder.popFirst() {
                    if let summary = tables.remove(oldest.id) { evicted.append(summary) }
                }
                guard tables.byID.count + records.count <= maxJobs else {
                    return .failure(StoreError("the in-memory store holds \(tables.byID.count) jobs, its limit (--memory-max-jobs \(maxJobs)), and \(tables.liveCount) of them are still queued, scheduled or running, so none can be evicted. Retry once some have finished, or raise --memory-max-jobs"))
                }
                for record in records { tables.insert(record) }
            case .started(let key, let attempt, let at):
                tables.update(key.id) { entry in
                    guard entry.record.attempt <= attempt, !entry.record.status.isFinished else { return }
                    entry.record.status = .running
                    entry.record.startedAt = at
                    entry.record.attempt = attempt
                    entry.record.nextAttemptAt = nil
                }
            case .finished(let key, let attempt, let startedAt, let status, let result, let error, let at, let event):
                tables.update(key.id) { entry in
                    // The attempt token: a stale attempt never overwrites a newer one's result.
                    guard entry.record.attempt == attempt, !entry.record.status.isFinished else { return }
                    entry.record.status = status
                    entry.record.result = result
                    entry.record.error = error
                    entry.record.finishedAt = at
                    if let startedAt { entry.record.startedAt = startedAt }
                    entry.record.nextAttemptAt = nil
                    entry.webhookEvent = event
                }
            case .retrying(let key, let attempt, _, let error, _, let next):
                tables.update(key.id) { entry in
                    guard entry.record.attempt == attempt, !entry.record.status.isFinished else { return }
                    entry.record.status = .scheduled
                    entry.record.attempt = attempt + 1
                    entry.record.nextAttemptAt = next
                    entry.record.startedAt = nil
                    entry.record.error = error
                }
            case .requeued(let key, let attempt, _):
                tables.update(key.id) { entry in
                    guard !entry.record.status.isFinished else { return }
                    entry.record.status = .queued
                    entry.record.startedAt = nil
                    entry.record.attempt = attempt
                }
            case .webhookAttempted(let id, let attempt, let state, let next):
                tables.update(id) { entry in
                    entry.webhookEvent?.attempts.removeAll { $0.number == attempt.number }
                    entry.webhookEvent?.attempts.append(attempt)
                    entry.webhookEvent?.state = state
                    entry.webhookEvent?.nextAttemptAt = next
                }
            case .webhookRedelivered(let id, let roundStart):
                tables.update(id) { entry in
                    entry.webhookEvent?.state = .pending
                    entry.webhookEvent?.roundStart = roundStart
                    entry.webhookEvent?.nextAttemptAt = nil
                }
            case .purged(let keys):
                for key in keys { tables.remove(key.id) }
            case .cancelRequested:
                break // one process owns this store: every cancel is local
            }
            return .success(())
        }
        if !evicted.isEmpty, let handler = evictionHandler.withLock({ $0 }) { handler(evicted) }
        whenDurable?(outcome)
    }

    public func requeueInterrupted(at now: Date) throws(StoreError) -> Int {
        tables.withLock { tables in
            let running = tables.byID.compactMap { id, entry in
                entry.record.status == .running && entry.record.attempt < entry.record.maxAttempts ? id : nil
            }
            for id in running {
                tables.update(id) { entry in
                    entry.record.status = .queued
                    entry.record.attempt += 1
                    entry.record.startedAt = nil
                }
            }
            return running.count
        }
    }

    public func loadUnfinished() throws(StoreError) -> StoredState {
        tables.withLock { tables in
            let live = tables.order.compactMap { key -> JobRecord? in
                guard let record = tables.byID[key.id]?.record, !record.status.isFinished else { return nil }
                return record
            }
            let pending = tables.byID.values.compactMap { $0.webhookEvent }.filter { $0.state == .pending }
            var counts: [JobCounts.Key: Int] = [:]
            for entry in tables.byID.values {
                counts[JobCounts.Key(owner: entry.record.owner, kind: entry.record.kind, state: entry.record.status), default: 0] += 1
            }
            return StoredState(jobs: live, webhookEvents: pending, counts: counts)
        }
    }

    public func job(withID id: JobID) throws(StoreError) -> StoredJob? {
        tables.withLock { tables in tables.byID[id].map(Self.stored) }
    }

    public func jobs(matching filter: JobFilter, limit: Int, after cursor: JobCursor?) throws(StoreError) -> [StoredJob] {
        tables.withLock { tables in
            var index = tables.order.count - 1
            if let cursor { index = Tables.insertionIndex(of: cursor.createdAt, cursor.id, in: tables.order) - 1 }
            var found: [StoredJob] = []
            while index >= 0, found.count < limit {
                let key = tables.order[index]
                index -= 1
                if let createdFrom = filter.createdFrom, key.createdAt < createdFrom { break }
                guard let entry = tables.byID[key.id] else { continue }
                let record = entry.record
                if filter.matches(kind: record.kind, owner: record.owner, status: record.status, createdAt: record.createdAt) {
                    found.append(Self.stored(entry))
                }
            }
            return found
        }
    }

    public func job(idempotencyKey key: String, owner: String?, now: Date) throws(StoreError) -> StoredJob? {
        tables.withLock { tables in
            guard let id = tables.idempotency[IdempotencyScope(owner: owner, key: key)], let entry = tables.byID[id],
                  let record = entry.record.options.idempotency, record.expiresAt > now else { return nil }
            return Self.stored(entry)
        }
    }

    public func webhookEvent(of id: JobID) throws(StoreError) -> WebhookEventRecord? {
        tables.withLock { $0.byID[id]?.webhookEvent }
    }

    public func expiredJobs(finishedBefore cutoff: Date, limit: Int) throws(StoreError) -> [StoredJobSummary] {
        tables.withLock { tables in
            var found: [StoredJobSummary] = []
            for key in tables.finishedOrder {
                guard found.count < limit else { break }
                guard let entry = tables.byID[key.id] else { continue }
                guard let finishedAt = entry.record.finishedAt, finishedAt < cutoff else { break }
                if entry.webhookEvent?.state == .pending { continue }
                found.append(StoredJobSummary(key: key, owner: entry.record.owner, kind: entry.record.kind, status: entry.record.status))
            }
            return found
        }
    }

    private static func stored(_ entry: Entry) -> StoredJob {
        let status = entry.webhookEvent.map { WebhookStatus(url: $0.url, state: $0.state, attempts: $0.attempts.count) }
            ?? entry.record.webhook.map { WebhookStatus(url: $0.url, state: .pending, attempts: 0) }
        return StoredJob(record: entry.record, webhookStatus: status)
    }
}
