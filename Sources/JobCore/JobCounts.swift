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

    /// A job left the index (retention).
    func removed(_ job: Job, state: JobState) {
        counts.withLock { $0[Key(owner: job.owner, kind: job.kind, state: state), default: 0] -= 1 }
    }

    /// Counts above zero, of every owner or of one (`.some(nil)` is the jobs without an owner).
    public func snapshot(owner: String?? = .none) -> [Key: Int] {
        counts.withLock { counts in
            counts.filter { key, count in
                guard count > 0 else { return false }
                if case .some(let wanted) = owner { return key.owner == wanted }
                return true
            }
        }
    }
}
