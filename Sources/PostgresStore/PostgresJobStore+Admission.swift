import JobCore
import Postgres

extension PostgresJobStore {
    /// "jobpool" in ASCII, then 3: taken by a transaction that admits submissions against the
    /// queue limits, so that two nodes never both see room for the same last place.
    static let admissionLockKey: Int64 = 0x6A6F_6270_6F6F_6C03

    /// The queue limits (`--max-queued`, `--max-queued-per-tenant`), checked cluster-wide in the
    /// transaction that inserts the submissions: each node alone sees only its own submissions
    /// in flight, so the table is counted instead.
    ///
    /// A transaction with jobs to queue takes ``admissionLockKey`` first (the writer does, before
    /// any row lock); the first submission counts the queued jobs (up to the limit), and later
    /// ones in the batch add to that count as they are admitted. The trade-off: submitting transactions of all nodes
    /// take turns for the moment between that count and their commit, and the count reads up
    /// to `--max-queued` index entries once per batch.
    struct Admission {
        let limits: (maxQueued: Int, maxQueuedPerOwner: Int?)?
        private var queued: Int?
        private var queuedByOwner: [String: Int] = [:]

        init(limits: (maxQueued: Int, maxQueuedPerOwner: Int?)?) {
            self.limits = limits
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

        private mutating func queuedCount(_ limit: Int, on connection: PostgresConnection) throws -> Int {
            if let queued { return queued }
            let rows = try connection.query("""
                SELECT count(*) AS n FROM (SELECT 1 FROM jobs WHERE status = 'queued' LIMIT $1::int) AS q
                """, [min(limit, Int(Int32.max) - 1) + 1])
            let counted = try rows.first?.int("n") ?? 0
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
