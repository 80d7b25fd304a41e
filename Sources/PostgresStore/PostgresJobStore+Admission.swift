import JobCore
import Postgres
import Synchronization

extension PostgresJobStore {
    /// "jobpool" in ASCII, then 3: taken by a transaction that admits submissions against the
    /// queue limits, so that two nodes never both see room for the same last place.
    static let admissionLockKey: Int64 = 0x6A6F_6270_6F6F_6C03

    /// The queue limits (`--max-queued`, `--max-queued-per-tenant`), checked cluster-wide in the
    /// transaction that inserts the submissions: each node alone sees only its own submissions
    /// in flight, so the database is asked instead.
    ///
    /// A transaction with jobs to queue takes ``admissionLockKey`` first (the writer does, before
    /// any row lock). Its first submission reads the admission counter and, unless the bound it
    /// gives leaves room for every job the batch queues, counts the queued jobs up to the limit
    /// (``AdmissionBound``); later ones in the batch add to that as they are admitted. So a
    /// submission is refused only on an exact count, never on the bound. The trade-off:
    /// submitting transactions of all nodes take turns for the moment between that check and
    /// their commit. A tenant's share is counted, through `jobs_by_owner_status`, once per batch.
    struct Admission {
        let limits: (maxQueued: Int, maxQueuedPerOwner: Int?)?
        private let bound: AdmissionBound
        /// The jobs the whole batch would queue.
        private let queuedInBatch: Int
        private var queued: Int?
        private var queuedByOwner: [String: Int] = [:]

        init(limits: (maxQueued: Int, maxQueuedPerOwner: Int?)?, bound: AdmissionBound, queuedInBatch: Int) {
            self.limits = limits
            self.bound = bound
            self.queuedInBatch = queuedInBatch
        }

        /// Why `jobs` (one submission, one owner) may not be queued, or nil once they are
        /// counted in.
        mutating func refusal(of jobs: [JobRecord], on connection: PostgresConnection) throws -> StoreError? {
            guard let limits else { return nil }
            let count = jobs.count { $0.status == .queued }
            guard count > 0 else { return nil }
            let total = try queuedCount(limits.maxQueued, on: connection)
            let owner = jobs[0].owner
            if let owner, let perOwner = limits.maxQueuedPerOwner {
                let owned = try ownerCount(owner, on: connection)
                if owned + count > perOwner {
                    return StoreError("the tenant's share of the queue is full (\(perOwner) jobs)", queueLimit: .ownerQueueFull(limit: perOwner))
                }
            }
            guard total + count <= limits.maxQueued else {
                return StoreError("the queue is full (\(limits.maxQueued) jobs)", queueLimit: .queueFull(limit: limits.maxQueued))
            }
            queued = total + count
            if let owner, limits.maxQueuedPerOwner != nil { queuedByOwner[owner, default: 0] += count }
            return nil
        }

        /// The queued jobs, or more: the bound, while it leaves room for the whole batch;
        /// counted when it does not. The counter is read before the count, so that a job queued
        /// in between is in both (counted twice: the bound stays a bound). A count cut off at
        /// the limit is only a floor, and is not kept as a bound.
        private mutating func queuedCount(_ limit: Int, on connection: PostgresConnection) throws -> Int {
            if let queued { return queued }
            let entered = try connection.query("SELECT entered FROM job_admissions").first?.int64("entered")
            if let entered, let atMost = bound.queuedAtMost(entered: entered), atMost + queuedInBatch <= limit {
                queued = atMost
                return atMost
            }
            let rows = try connection.query("""
                SELECT count(*) AS n FROM (SELECT 1 FROM jobs WHERE status = 'queued' LIMIT $1::int) AS q
                """, [min(limit, Int(Int32.max) - 1) + 1])
            let counted = try rows.first?.int("n") ?? 0
            if let entered, counted <= limit { bound.record(queued: counted, entered: entered) }
            queued = counted
            return counted
        }

        private mutating func ownerCount(_ owner: String, on connection: PostgresConnection) throws -> Int {
            if let known = queuedByOwner[owner] { return known }
            let rows = try connection.query("""
                SELECT count(*) AS n FROM jobs WHERE owner = $1 AND status = 'queued'
                """, [owner])
            let counted = try rows.first?.int("n") ?? 0
            queuedByOwner[owner] = counted
            return counted
        }
    }
}

/// What bounds the cluster's queue from above without counting it: the last exact count, and
/// `job_admissions.entered` as read just before it (``PostgresSchema/version9``). Every job that
/// entered `queued` since is in the counter's growth; jobs that left (claimed, cancelled) are
/// not taken off, so the bound only loosens until the next count. Shared by the writer lanes.
///
/// A bound holds only for the database it was counted in. It is dropped when a writer
/// reconnects (a failover may promote a copy that lost claims but not admissions), when the
/// counter goes back (a database restored under the node), and after ``maximumAge``, so that
/// a copy swapped in unnoticed is counted again soon.
final class AdmissionBound: Sendable {
    private let last = Mutex<(queued: Int, entered: Int64, at: ContinuousClock.Instant)?>(nil)
    let maximumAge: Duration

    init(maximumAge: Duration = .seconds(10)) {
        self.maximumAge = maximumAge
    }

    /// The most jobs the queue can hold, given the counter `entered` read now; nil when there
    /// is no bound to go by.
    func queuedAtMost(entered: Int64) -> Int? {
        last.withLock { last in
            guard let last, entered >= last.entered, ContinuousClock.now - last.at < maximumAge else { return nil }
            let growth = entered - last.entered
            return growth > Int64(Int.max - last.queued) ? nil : last.queued + Int(growth)
        }
    }

    func record(queued: Int, entered: Int64) {
        last.withLock { $0 = (queued, entered, .now) }
    }

    func reset() {
        last.withLock { $0 = nil }
    }
}
