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
    ///
    /// A job this process submitted is held as its ``Job`` (see ``submit(_:whenDurable:)``):
    /// the store reads it rather than keeping a copy of it that every state change would have
    /// to update, and the object outlives its time in live memory, so that finishing a job
    /// frees nothing. A record written through ``apply(_:whenDurable:)`` is kept as it is.
    private final class Entry {
        let held: Job?
        var stored: JobRecord?
        var webhookEvent: WebhookEventRecord?
        /// Whether a held job's final state was written (the job itself may be ahead of it).
        var heldFinished = false

        init(record: JobRecord) {
            self.held = nil
            self.stored = record
        }

        init(job: Job) {
            self.held = job
        }

        var id: JobID { held?.id ?? stored!.id }
        var key: JobKey { held.map { JobKey(id: $0.id, createdAt: $0.createdAt) } ?? stored!.key }
        var owner: String? { held.map(\.owner) ?? stored!.owner }
        var kind: String { held?.kind ?? stored!.kind }
        var idempotency: IdempotencyRecord? { held.map(\.options.idempotency) ?? stored!.options.idempotency }
        var isFinished: Bool { held != nil ? heldFinished : stored!.status.isFinished }
        var status: JobState { held?.currentStatus ?? stored!.status }
        /// The job as it stands: a held job's current state.
        var record: JobRecord { held?.record() ?? stored! }
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

        mutating func insert(_ entry: Entry) {
            let key = entry.key
            byID[key.id] = entry
            if let last = order.last, (last.createdAt, last.id) > (key.createdAt, key.id) {
                // Submitters on two threads may arrive out of creation order.
                order.insert(key, at: Self.insertionIndex(of: key.createdAt, key.id, in: order))
            } else {
                order.append(key)
            }
            if let idempotency = entry.idempotency {
                self.idempotency[IdempotencyScope(owner: entry.owner, key: idempotency.key)] = key.id
            }
            if entry.isFinished { finishedOrder.append(key) } else { liveCount += 1 }
        }

        /// Changes a job's record in place, keeping the finished order in step. A held job
        /// changes itself: for it, `change` is not run, and only a final state (`finishes`,
        /// with its webhook event) is noted.
        ///
        /// No counts are kept here: the executor keeps them as jobs change, and only a start
        /// reads them from the store (``loadUnfinished()`` counts then), so keeping them per
        /// change would cost two hashed look-ups per transition for nothing.
        mutating func update(_ id: JobID, finishes: Bool = false, event: WebhookEventRecord? = nil,
                             _ change: (inout JobRecord, Entry) -> Void) {
            guard let entry = byID[id] else { return }
            let wasFinished = entry.isFinished
            if entry.held != nil {
                guard finishes, !wasFinished else { return }
                entry.heldFinished = true
                entry.webhookEvent = event
            } else {
                change(&entry.stored!, entry)
            }
            if !wasFinished, entry.isFinished {
                finishedOrder.append(entry.key)
                liveCount -= 1
            }
        }

        @discardableResult
        mutating func remove(_ id: JobID) -> StoredJobSummary? {
            guard let entry = byID.removeValue(forKey: id) else { return nil }
            if let idempotency = entry.idempotency {
                let scope = IdempotencyScope(owner: entry.owner, key: idempotency.key)
                if self.idempotency[scope] == id { self.idempotency[scope] = nil }
            }
            let record = entry.record
            if !entry.isFinished { liveCount -= 1 }
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

    /// Holds the jobs themselves (see `Entry`): their state is read from them, so their
    /// state changes need no copying here.
    public func submit(_ jobs: [Job], whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        admit(jobs: jobs, records: [], whenDurable: whenDurable)
    }

    public func heldJob(withID id: JobID) -> Job? {
        tables.withLock { $0.byID[id]?.held }
    }

    public var holdsJobs: Bool { true }

    /// Adds held jobs or records (entries are made under the lock: they belong to the tables).
    private func admit(jobs: [Job], records: [JobRecord], whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        var evicted: [StoredJobSummary] = []
        let count = jobs.count + records.count
        let outcome = tables.withLock { tables -> Result<Void, StoreError> in
            // Make room first: the oldest finished jobs go; live ones never do.
            while tables.byID.count + count > maxJobs, let oldest = tables.finishedOrder.popFirst() {
                if let summary = tables.remove(oldest.id) { evicted.append(summary) }
            }
            guard tables.byID.count + count <= maxJobs else {
                return .failure(StoreError("the in-memory store holds \(tables.byID.count) jobs, its limit (--memory-max-jobs \(maxJobs)), and \(tables.liveCount) of them are still queued, scheduled or running, so none can be evicted. Retry once some have finished, or raise --memory-max-jobs"))
            }
            for job in jobs { tables.insert(Entry(job: job)) }
            for record in records { tables.insert(Entry(record: record)) }
            return .success(())
        }
        if !evicted.isEmpty, let handler = evictionHandler.withLock({ $0 }) { handler(evicted) }
        whenDurable?(outcome)
    }

    public func apply(_ change: StoreChange, whenDurable: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        if case .submitted(let records) = change {
            admit(jobs: [], records: records, whenDurable: whenDurable)
            return
        }
        tables.withLock { tables in
            switch change {
            case .submitted:
                break
            case .started(let key, let attempt, let at):
                tables.update(key.id) { record, _ in
                    guard record.attempt <= attempt, !record.status.isFinished else { return }
                    record.status = .running
                    record.startedAt = at
                    record.attempt = attempt
                    record.nextAttemptAt = nil
                }
            case .finished(let key, let attempt, let startedAt, let status, let result, let error, let at, let event, _, _):
                tables.update(key.id, finishes: true, event: event) { record, entry in
                    // The attempt token: a stale attempt never overwrites a newer one's result.
                    guard record.attempt == attempt, !record.status.isFinished else { return }
                    record.status = status
                    record.result = result
                    record.error = error
                    record.finishedAt = at
                    if let startedAt { record.startedAt = startedAt }
                    record.nextAttemptAt = nil
                    entry.webhookEvent = event
                }
            case .retrying(let key, let attempt, _, let error, _, let next):
                tables.update(key.id) { record, _ in
                    guard record.attempt == attempt, !record.status.isFinished else { return }
                    record.status = .scheduled
                    record.attempt = attempt + 1
                    record.nextAttemptAt = next
                    record.startedAt = nil
                    record.error = error
                }
            case .requeued(let key, let attempt, _):
                tables.update(key.id) { record, _ in
                    guard !record.status.isFinished else { return }
                    record.status = .queued
                    record.startedAt = nil
                    record.attempt = attempt
                }
            case .webhookAttempted(let id, let attempt, let state, let next):
                tables.byID[id].map { entry in
                    entry.webhookEvent?.attempts.removeAll { $0.number == attempt.number }
                    entry.webhookEvent?.attempts.append(attempt)
                    entry.webhookEvent?.state = state
                    entry.webhookEvent?.nextAttemptAt = next
                }
            case .webhookRedelivered(let id, let roundStart):
                tables.byID[id].map { entry in
                    entry.webhookEvent?.state = .pending
                    entry.webhookEvent?.roundStart = roundStart
                    entry.webhookEvent?.nextAttemptAt = nil
                }
            case .webhookRendered(let id, let body):
                tables.byID[id].map { entry in
                    if entry.webhookEvent?.body.isEmpty == true { entry.webhookEvent?.body = body }
                }
            case .purged(let keys):
                for key in keys { tables.remove(key.id) }
            case .cancelRequested:
                break // one process owns this store: every cancel is local
            }
        }
        whenDurable?(.success(()))
    }

    /// Only records written through `apply` can be left running by another process; a held
    /// job belongs to this one.
    public func requeueInterrupted(at now: Date) throws(StoreError) -> Int {
        tables.withLock { tables in
            let running = tables.byID.compactMap { id, entry in
                entry.stored.map { $0.status == .running && $0.attempt < $0.maxAttempts } == true ? id : nil
            }
            for id in running {
                tables.update(id) { record, _ in
                    record.status = .queued
                    record.attempt += 1
                    record.startedAt = nil
                }
            }
            return running.count
        }
    }

    public func loadUnfinished() throws(StoreError) -> StoredState {
        tables.withLock { tables in
            let live = tables.order.compactMap { key -> JobRecord? in
                guard let entry = tables.byID[key.id], !entry.isFinished else { return nil }
                return entry.record
            }
            let pending = tables.byID.values.compactMap { $0.webhookEvent }.filter { $0.state == .pending }
            var counts: [JobCounts.Key: Int] = [:]
            for entry in tables.byID.values {
                let record = entry.record
                counts[JobCounts.Key(owner: record.owner, kind: record.kind, state: record.status), default: 0] += 1
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
                if filter.matches(kind: entry.kind, owner: entry.owner, status: entry.status, createdAt: key.createdAt) {
                    found.append(Self.stored(entry))
                }
            }
            return found
        }
    }

    public func job(idempotencyKey key: String, owner: String?, now: Date) throws(StoreError) -> StoredJob? {
        tables.withLock { tables in
            guard let id = tables.idempotency[IdempotencyScope(owner: owner, key: key)], let entry = tables.byID[id],
                  let record = entry.idempotency, record.expiresAt > now else { return nil }
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
                let record = entry.record
                guard let finishedAt = record.finishedAt, finishedAt < cutoff else { break }
                if entry.webhookEvent?.state == .pending { continue }
                found.append(StoredJobSummary(key: key, owner: record.owner, kind: record.kind, status: record.status))
            }
            return found
        }
    }

    private static func stored(_ entry: Entry) -> StoredJob {
        let record = entry.record
        let status = entry.webhookEvent.map { WebhookStatus(url: $0.url, state: $0.state, attempts: $0.attempts.count) }
            ?? record.webhook.map { WebhookStatus(url: $0.url, state: .pending, attempts: 0) }
        return StoredJob(record: record, webhookStatus: status)
    }
}
