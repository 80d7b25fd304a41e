import Foundation
import Synchronization

/// Work waiting for a worker, as a store hands it out: the worker pool takes jobs only by
/// claiming them here, never from a queue of its own.
///
/// A store that one process owns (SQLite, whose owner lock this process holds, or memory)
/// keeps its due work in memory (``LocalWorkQueue``), so a claim is a pop: local and cheap. A
/// store shared by several processes claims rows instead (PostgreSQL: `FOR UPDATE SKIP
/// LOCKED`), so that each job is claimed by one of them.
///
/// The pool calls these under its own lock (claiming and marking running are one step for it),
/// so an implementation must answer without waiting on anything that may call the pool.
public protocol WorkQueue: Sendable {
    /// Makes an accepted job claimable: it is due now (queued). A scheduled job is offered when
    /// its time comes.
    func offer(_ job: Job)

    /// Claims the job to run next, by priority with aging (see ``PriorityQueue``), or nil when
    /// nothing is due. A job cancelled while queued is still handed out, for the pool to skip.
    func claimNext(now: Date) -> Job?

    /// True when a claim may find work: the pool wakes an idle worker only then.
    var hasClaimableWork: Bool { get }

    /// When the longest-waiting job still queued was queued: all owners' when `owner` is
    /// `.none`, else only that owner's (`.some(nil)`: jobs without an owner).
    func oldestQueuedAt(owner: String??) -> Date?

    /// Takes every job not yet claimed, in no particular order (a drain: they never ran here).
    func takeUnclaimed() -> [Job]

    /// True when other nodes claim from the same queue: a job offered here may run elsewhere,
    /// so the pool holds no queue slot for it past the offer, and the claim itself records the
    /// start (the pool writes no separate one).
    var isShared: Bool { get }

    /// Connects a shared queue to this node's pool and executor (``WorkQueueHost``), before
    /// either starts. Does nothing for a local queue.
    func attach(_ host: WorkQueueHost)

    /// A worker finished a job and is free: a shared queue may claim another.
    func workerFreed()

    /// A shared queue looks at the rest of the cluster now rather than at its next poll: which
    /// of this node's waiting jobs another node took (``WorkQueueHost/claimedElsewhere``).
    /// Does nothing for a local queue.
    func lookAroundSoon()
}

extension WorkQueue {
    public func lookAroundSoon() {}
}

/// The due work of a store that one process owns: a priority queue in memory, behind its own
/// lock.
public final class LocalWorkQueue: WorkQueue {
    private let queue: Mutex<PriorityQueue>

    /// - Parameter agingStep: how long a queued job waits to gain one priority level.
    public init(agingStep: Duration = .seconds(10)) {
        queue = Mutex(PriorityQueue(agingStep: agingStep))
    }

    public func offer(_ job: Job) {
        let now = Date()
        queue.withLock { $0.append(job, now: now) }
    }

    public func claimNext(now: Date) -> Job? {
        queue.withLock { $0.popFirst(now: now)?.job }
    }

    public var hasClaimableWork: Bool { queue.withLock { !$0.isEmpty } }

    public func oldestQueuedAt(owner: String??) -> Date? {
        queue.withLock { $0.oldestQueuedAt(owner: owner) }
    }

    public func takeUnclaimed() -> [Job] {
        queue.withLock { queue in
            let jobs = queue.allJobs
            queue.removeAll()
            return jobs
        }
    }
}
