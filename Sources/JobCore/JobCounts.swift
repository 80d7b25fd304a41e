import Synchronization

/// Jobs by owner, kind and state, kept up to date on every state change, so that statistics
/// cost a walk over a few counters rather than over every job.
public final class JobCounts: Sendable {
    public struct Key: Hashable, Sendable {
        public var owner: String?
        public var kind: String
        public var state: JobState

        public init(owner: String?, kind: String, state: JobState) {
            self.owner = owner
            self.kind = kind
            self.state = state
        }
    }

    /// The counts, split into stripes that each job's changes go to by its ID, so that workers
    /// finishing different jobs at once rarely wait for one another. A stripe's count for a
    /// key may be negative (a job counted at start in one stripe, removed in another); only
    /// the sum over the stripes means anything.
    ///
    /// One lock for all was the pool's hottest lock: profiled on one PostgreSQL node with 64
    /// workers, a fifth of the node's CPU went to waiting for it, as each claim's batch of
    /// jobs starts and finishes at once on as many threads.
    private let stripes: [Stripe] = (0..<JobCounts.stripeCount).map { _ in Stripe() }
    private static let stripeCount = 16

    /// One lock's share of the counts (a class, as a `Mutex` cannot be kept in an array).
    private final class Stripe: Sendable {
        let counts = Mutex<[Key: Int]>([:])
    }

    public init() {}

    /// The stripe of `job`'s changes: the ID's last byte, random (see ``JobID``).
    private func stripe(of job: Job) -> Stripe {
        stripes[Int(job.id.uuid.uuid.15) % Self.stripeCount]
    }

    /// The stripe for changes that name no job.
    private var sharedStripe: Stripe { stripes[0] }

    /// The hook each job reports its state changes to.
    var hook: JobStateChangeHook {
        { [self] job, from, to in
            stripe(of: job).counts.withLock { counts in
                if let from { Self.add(-1, to: Key(owner: job.owner, kind: job.kind, state: from), in: &counts) }
                Self.add(1, to: Key(owner: job.owner, kind: job.kind, state: to), in: &counts)
            }
        }
    }

    /// A job left the store (refused after all).
    func removed(_ job: Job, state: JobState) {
        stripe(of: job).counts.withLock { Self.add(-1, to: Key(owner: job.owner, kind: job.kind, state: state), in: &$0) }
    }

    /// A stored job was deleted (retention, or eviction from the in-memory store).
    func removed(_ key: Key) {
        sharedStripe.counts.withLock { Self.add(-1, to: key, in: &$0) }
    }

    /// A job's state changed without its hook (a recovered job shown in a new state).
    func shift(owner: String?, kind: String, from: JobState, to: JobState) {
        sharedStripe.counts.withLock { counts in
            Self.add(-1, to: Key(owner: owner, kind: kind, state: from), in: &counts)
            Self.add(1, to: Key(owner: owner, kind: kind, state: to), in: &counts)
        }
    }

    /// Starts from the counts the store kept of every stored job (at start, before any job is
    /// made: recovered jobs are in these counts already, so they do not announce themselves).
    func seed(_ stored: [Key: Int]) {
        sharedStripe.counts.withLock { counts in
            for (key, count) in stored { Self.add(count, to: key, in: &counts) }
        }
    }

    /// Adds `delta` to `key`'s count, dropping a count that comes to zero: the stripes keep
    /// only the keys that count something, and a snapshot merges no more than those.
    private static func add(_ delta: Int, to key: Key, in counts: inout [Key: Int]) {
        let count = counts[key, default: 0] + delta
        counts[key] = count == 0 ? nil : count
    }

    /// Counts above zero, of every owner or of one (`.some(nil)` is the jobs without an owner).
    public func snapshot(owner: String?? = .none) -> [Key: Int] {
        var total: [Key: Int] = [:]
        for stripe in stripes {
            stripe.counts.withLock { counts in
                for (key, count) in counts { total[key, default: 0] += count }
            }
        }
        return Self.select(total, owner: owner)
    }

    /// The counts above zero in `counts`, of every owner or of one (see ``snapshot(owner:)``).
    public static func select(_ counts: [Key: Int], owner: String?? = .none) -> [Key: Int] {
        counts.filter { key, count in
            guard count > 0 else { return false }
            if case .some(let wanted) = owner { return key.owner == wanted }
            return true
        }
    }
}
