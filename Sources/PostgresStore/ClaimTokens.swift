import JobCore
import Synchronization

/// The fencing token of each job this process claimed and has not yet written an outcome
/// for: the attempt, and the node ID it was claimed under.
///
/// Every write about a running job (a finish, a retry, a hand-back) carries its token and
/// changes nothing unless the row is still that attempt, running on that node, under a lease
/// that holds: once the rescue sweeper has given the job to another node, or this node's lease
/// lapsed, the write is stale. The token is kept here rather than on the job, so that the core
/// knows nothing of nodes.
final class ClaimTokens: Sendable {
    struct Token: Sendable, Equatable {
        var attempt: Int
        var node: String
    }

    private let tokens = Mutex<[JobID: Token]>([:])

    /// Records a claim.
    func record(_ id: JobID, _ token: Token) {
        tokens.withLock { $0[id] = token }
    }

    /// The claim's token, or nil for a job this process did not claim (a queued job cancelled
    /// here, say: its write then applies only while nobody has claimed it).
    func token(for id: JobID) -> Token? {
        tokens.withLock { $0[id] }
    }

    /// Forgets the claims whose outcome was written (or found stale): each job's, if its token
    /// is still of that attempt (a late write of an older attempt leaves the newer claim be).
    func remove(_ attempts: [(id: JobID, attempt: Int)]) {
        guard !attempts.isEmpty else { return }
        tokens.withLock { tokens in
            for (id, attempt) in attempts where tokens[id]?.attempt == attempt { tokens[id] = nil }
        }
    }
}

extension StoreError {
    /// A write about an attempt that is no longer this node's to write (see ``ClaimTokens``).
    static func staleAttempt(_ id: JobID) -> StoreError {
        StoreError("job \(id) is no longer this node's attempt: its lease lapsed or another node took the job over; the write changed nothing",
                   isStale: true)
    }

    /// A write about a webhook event that this node no longer holds (another node claimed it,
    /// or this node's lease lapsed): nothing changed, and the deliverer drops the event.
    static func staleDelivery(_ id: JobID) -> StoreError {
        StoreError("the webhook event of job \(id) is no longer this node's to deliver: another node claimed it, or this node's lease lapsed; the write changed nothing",
                   isStale: true)
    }
}
