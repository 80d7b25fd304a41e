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

    private let counts = Mutex<[Key: Int]>([:])

    public init() {}

    /// The hook each job reports its state changes to.
    var hook: JobStateChangeHook {
        { [self] job, from, to in
            counts.withLock { counts in
                if let from { counts[Key(owner: job.owner, kind: job.kind, state: from), default: 0] -= 1 }
                counts[Key(owner: job.owner, kind: job.kind, state: to), default: 0] += 1
            }
        }
    }

    /// A job left the store (refused after all).
    func removed(_ job: Job, state: JobState) {
        removed(Key(owner: job.owner, kind: job.kind, state: state))
    }

    /// A stored job was deleted (retention, or eviction from the in-memory store).
    func removed(_ key: Key) {
        counts.withLock { $0[key, default: 0] -= 1 }
    }

    /// A job's state changed without its hook (a recovered job shown in a new state).
    func shift(owner: String?, kind: String, from: JobState, to: JobState) {
        counts.withLock { counts in
            counts[Key(owner: owner, kind: kind, state: from), default: 0] -= 1
            counts[Key(owner: owner, kind: kind, state: to), default: 0] += 1
        }
    }

    /// Starts from the counts the store kept of every stored job (at start, before any job is
    /// made: recovered jobs are in these counts already, so they do not announce themselves).
    func seed(_ stored: [Key: Int]) {
        counts.withLock { counts in
            for (key, count) in stored { counts[key, default: 0] += count }
        }
    }

    /// Counts above zero, of every owner or of one (`.some(nil)` is the jobs without an owner).
    public func snapshot(owner: String?? = .none) -> [Key: Int] {
        counts.withLock { Self.select($0, owner: owner) }
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
