/// What a shared work queue needs from the node that claims from it (see
/// ``WorkQueue/attach(_:)``): a queue one process owns needs none of it.
///
/// A shared queue claims rows on a thread of its own, never under the pool's lock: it asks how
/// many workers are free, turns each claimed record into a ``Job``, and wakes the pool once its
/// local buffer holds work.
public struct WorkQueueHost: Sendable {
    /// Workers not running a job right now (0 while the pool is not taking jobs).
    public var freeWorkers: @Sendable () -> Int
    /// Wakes an idle worker, if any, to claim from the buffer.
    public var wakeWorkers: @Sendable () -> Void
    /// The job to run for a claimed record: the live one if this node accepted it, so that its
    /// waiters see it run, or one made from the record. Nil for a job that cannot be run here.
    public var makeJob: @Sendable (JobRecord) -> Job?
    /// The live jobs this node accepted that still wait, in memory, for a claim: the queue tells
    /// ``claimedElsewhere`` which of them another node took (or finished).
    public var waitingJobs: @Sendable () -> [Job]
    /// These jobs left this node's hands: another node claimed them, or they finished
    /// elsewhere. The store answers for them from now on.
    public var claimedElsewhere: @Sendable ([Job]) -> Void
    /// The most jobs that may wait in the whole cluster's queue (`--max-queued`): a shared
    /// queue's store refuses a submission past it, counting what the table holds.
    public var maxQueued: Int
    /// The most one owner may have waiting, cluster-wide (`--max-queued-per-tenant`), or nil.
    public var maxQueuedPerOwner: Int?
    /// The store's rescue took these jobs back from dead nodes (re-queued, or failed out of
    /// attempts), as they now stand: counted, and announced on this node's event stream.
    public var rescued: @Sendable ([JobRecord]) -> Void

    public init(freeWorkers: @escaping @Sendable () -> Int, wakeWorkers: @escaping @Sendable () -> Void,
                makeJob: @escaping @Sendable (JobRecord) -> Job?, waitingJobs: @escaping @Sendable () -> [Job],
                claimedElsewhere: @escaping @Sendable ([Job]) -> Void, maxQueued: Int = .max, maxQueuedPerOwner: Int? = nil,
                rescued: @escaping @Sendable ([JobRecord]) -> Void = { _ in }) {
        self.rescued = rescued
        self.maxQueued = maxQueued
        self.maxQueuedPerOwner = maxQueuedPerOwner
        self.freeWorkers = freeWorkers
        self.wakeWorkers = wakeWorkers
        self.makeJob = makeJob
        self.waitingJobs = waitingJobs
        self.claimedElsewhere = claimedElsewhere
    }
}

extension WorkQueue {
    /// A queue one process owns has no claimer to connect.
    public func attach(_ host: WorkQueueHost) {}
    /// A local queue needs no telling: the pool pops from it directly.
    public func workerFreed() {}
    public var isShared: Bool { false }
}
