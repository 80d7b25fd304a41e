import Foundation
import Synchronization

/// The in-memory index of every job, by ID and in creation order.
///
/// Creation times are made strictly increasing (a job created in the same microsecond as the
/// one before is moved one microsecond later), so the order `(created_at, id)` that paging uses
/// is the order of this array, and a cursor stays valid however many jobs arrive meanwhile.
public final class JobRegistry: Sendable {
    private struct State {
        var byID: [JobID: Job] = [:]
        var inCreationOrder: [Job] = []
        var lastCreatedAt = Date.distantPast
        /// Jobs by the idempotency key they were submitted with, scoped by owner.
        var byIdempotencyKey: [IdempotencyScope: Job] = [:]
    }

    struct IdempotencyScope: Hashable {
        var owner: String?
        var key: String
    }

    private let state = Mutex(State())

    public init() {}

    /// A creation time later than every earlier one, for a job about to be made and inserted.
    func nextCreationTime(now: Date = Date()) -> Date {
        state.withLock { state in
            // Whole microseconds, as the API shows them, so that a cursor round-trips exactly.
            let micros = (now.timeIntervalSince1970 * 1_000_000).rounded(.down)
            let last = (state.lastCreatedAt.timeIntervalSince1970 * 1_000_000).rounded()
            let next = Date(timeIntervalSince1970: max(micros, last + 1) / 1_000_000)
            state.lastCreatedAt = next
            return next
        }
    }

    func insert(_ job: Job) {
        state.withLock { state in
            if job.createdAt > state.lastCreatedAt { state.lastCreatedAt = job.createdAt } // recovered jobs
            state.byID[job.id] = job
            if let record = job.options.idempotency {
                state.byIdempotencyKey[IdempotencyScope(owner: job.owner, key: record.key)] = job
            }
            // Submitters on two threads may insert out of creation order; keep the array sorted.
            let key = job.key
            if let last = state.inCreationOrder.last, (last.createdAt, last.id) > (key.createdAt, key.id) {
                state.inCreationOrder.insert(job, at: Self.lastIndex(before: key, in: state.inCreationOrder) + 1)
            } else {
                state.inCreationOrder.append(job)
            }
        }
    }

    /// IDs of up to `limit` jobs that finished before `cutoff`, whose webhook (if any) is no
    /// longer pending, oldest first.
    func finishedJobs(before cutoff: Date, limit: Int) -> [JobKey] {
        state.withLock { state in
            var found: [JobKey] = []
            for job in state.inCreationOrder {
                if found.count >= limit || job.createdAt >= cutoff { break }
                let snapshot = job.snapshot()
                guard let finishedAt = snapshot.finishedAt, finishedAt < cutoff, snapshot.webhook?.state != .pending else { continue }
                found.append(job.key)
            }
            return found
        }
    }

    /// Forgets these jobs (retention), returning those it held.
    func remove(_ ids: Set<JobID>) -> [Job] {
        state.withLock { state in
            var removed: [Job] = []
            for id in ids {
                guard let job = state.byID.removeValue(forKey: id) else { continue }
                removed.append(job)
                if let record = job.options.idempotency {
                    let scope = IdempotencyScope(owner: job.owner, key: record.key)
                    if state.byIdempotencyKey[scope] === job { state.byIdempotencyKey[scope] = nil }
                }
            }
            state.inCreationOrder.removeAll { ids.contains($0.id) }
            return removed
        }
    }

    /// The job an unexpired idempotency key of this owner created, if any. An expired key is
    /// forgotten here, so the next submission with it creates a new job.
    func job(forIdempotencyKey key: String, owner: String?, now: Date = Date()) -> Job? {
        state.withLock { state in
            let scope = IdempotencyScope(owner: owner, key: key)
            guard let job = state.byIdempotencyKey[scope] else { return nil }
            guard let record = job.options.idempotency, record.expiresAt > now else {
                state.byIdempotencyKey[scope] = nil
                return nil
            }
            return job
        }
    }

    /// The job with this ID, if it exists.
    public func job(withID id: JobID) -> Job? {
        state.withLock { $0.byID[id] }
    }

    /// Up to `limit` jobs matching `filter`, newest first, starting after `cursor`.
    public func list(filter: JobFilter, limit: Int, after cursor: JobCursor?) -> JobPage {
        let matches = state.withLock { state -> [Job] in
            let jobs = state.inCreationOrder
            var index = jobs.count - 1
            if let cursor { index = Self.lastIndex(before: cursor, in: jobs) }
            var found: [Job] = []
            while index >= 0, found.count <= limit {
                let job = jobs[index]
                if filter.matches(kind: job.kind, owner: job.owner, status: job.snapshot().status, createdAt: job.createdAt) { found.append(job) }
                index -= 1
            }
            return found
        }
        let page = matches.prefix(limit).map { $0.snapshot() }
        let next = matches.count > limit ? page.last.map { JobKey(id: $0.id, createdAt: $0.createdAt) } : nil
        return JobPage(jobs: page, nextCursor: next)
    }

    /// The index of the newest job strictly older than `cursor` in `(created_at, id)` order.
    private static func lastIndex(before cursor: JobCursor, in jobs: [Job]) -> Int {
        var low = 0, high = jobs.count // first index not before the cursor
        while low < high {
            let middle = (low + high) / 2
            let job = jobs[middle]
            if (job.createdAt, job.id) < (cursor.createdAt, cursor.id) { low = middle + 1 } else { high = middle }
        }
        return low - 1
    }
}
