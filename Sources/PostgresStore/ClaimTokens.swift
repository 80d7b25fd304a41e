import Dispatch
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

    private struct State {
        var tokens: [JobID: Token] = [:]
        /// Claims whose rows are back but whose commit is not yet known, by job: each job's
        /// group is left once its claim's commit is (``PostgresWorkQueue`` starts the jobs
        /// while the claim commits).
        var committing: [JobID: DispatchGroup] = [:]
    }

    private let state = Mutex(State())

    /// How long a write waits for the commit of its job's claim before it goes ahead anyway.
    /// A claim's commit takes a WAL flush, and a connection that libpq sees lost ends the wait
    /// at once with an error; this is for a database that accepts the commit and does not
    /// answer for that long (its other commits then hang as well), or a network that drops
    /// the answer without closing the connection. Gone ahead, the write finds the job still queued
    /// and is refused as stale; if the claim commits after that, the job stays `running` on
    /// this node until the node restarts. Waiting for good instead would stop every write of
    /// the lane behind one claim.
    static let commitPatience: Duration = .seconds(30)

    /// Records a claim.
    func record(_ id: JobID, _ token: Token) {
        state.withLock { $0.tokens[id] = token }
    }

    /// Records the claims of a statement whose commit is still on its way; `commit` is left
    /// once it is known, and ``settle(_:)`` called.
    func record(_ claimed: [(id: JobID, token: Token)], committing commit: DispatchGroup) {
        state.withLock { state in
            for (id, token) in claimed {
                state.tokens[id] = token
                state.committing[id] = commit
            }
        }
    }

    /// The commit of these jobs' claim is known (committed, or failed: then their writes are
    /// refused by the fencing, as the rows are not this node's).
    func settle(_ ids: [JobID]) {
        state.withLock { state in for id in ids { state.committing[id] = nil } }
    }

    /// Waits until the claims of `ids` are committed, so that a write about one of them
    /// reads the claimed row: a write made before it would find the job still queued, and be
    /// refused as stale.
    func waitUntilCommitted(_ ids: some Sequence<JobID>) {
        let commits = state.withLock { state in
            var seen = Set<ObjectIdentifier>()
            return ids.compactMap { state.committing[$0] }.filter { seen.insert(ObjectIdentifier($0)).inserted }
        }
        for commit in commits { _ = commit.wait(timeout: .now() + Self.commitPatience.dispatchInterval) }
    }

    /// The claim's token, or nil for a job this process did not claim (a queued job cancelled
    /// here, say: its write then applies only while nobody has claimed it). Waits for the
    /// claim's commit, if it is still on its way.
    func token(for id: JobID) -> Token? {
        waitUntilCommitted(CollectionOfOne(id))
        return state.withLock { $0.tokens[id] }
    }

    /// Forgets the claims whose outcome was written (or found stale): each job's, if its token
    /// is still of that attempt (a late write of an older attempt leaves the newer claim be).
    func remove(_ attempts: [(id: JobID, attempt: Int)]) {
        guard !attempts.isEmpty else { return }
        state.withLock { state in
            for (id, attempt) in attempts where state.tokens[id]?.attempt == attempt { state.tokens[id] = nil }
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
