import DequeModule
import Foundation

/// The order in which due work is claimed (``LocalWorkQueue``): highest priority first, FIFO within a priority, with aging so that
/// low priorities never starve.
///
/// The rule: a queued job's effective priority is its `priority` plus one for every
/// `agingStep` it has waited (10 s by default). The job with the highest effective priority
/// runs next; on a tie, the one queued first. So a priority -10 job waits at most about
/// 20 × 10 s = 200 s behind a stream of priority 10 jobs before it ties with fresh ones.
struct PriorityQueue {
    struct Entry {
        let job: Job
        let priority: Int
        let queuedAt: Date
        let sequence: UInt64
    }

    /// One FIFO per priority level, -10 at index 0.
    private var levels = Array(repeating: Deque<Entry>(), count: JobOptions.priorities.count)
    private var nextSequence: UInt64 = 0
    let agingStep: TimeInterval

    /// Entries held, including jobs cancelled while queued (skipped when reached).
    private(set) var count = 0
    var isEmpty: Bool { count == 0 }

    init(agingStep: Duration) {
        self.agingStep = max(agingStep.seconds, 0.001)
    }

    mutating func append(_ job: Job, now: Date = Date()) {
        let priority = min(max(job.options.priority, JobOptions.priorities.lowerBound), JobOptions.priorities.upperBound)
        levels[priority - JobOptions.priorities.lowerBound].append(
            Entry(job: job, priority: priority, queuedAt: now, sequence: nextSequence))
        nextSequence += 1
        count += 1
    }

    /// Takes the entry to run next: each level's head is its oldest, so only heads compete.
    mutating func popFirst(now: Date = Date()) -> Entry? {
        var best: (level: Int, effective: Int, sequence: UInt64)?
        for (level, entries) in levels.enumerated() {
            guard let head = entries.first else { continue }
            let effective = head.priority + Int(max(0, now.timeIntervalSince(head.queuedAt)) / agingStep)
            if let current = best, (current.effective, -Int64(current.sequence)) >= (effective, -Int64(head.sequence)) { continue }
            best = (level, effective, head.sequence)
        }
        guard let best else { return nil }
        count -= 1
        return levels[best.level].removeFirst()
    }

    /// Every job held, in no particular order.
    var allJobs: [Job] { levels.flatMap { $0.map(\.job) } }

    mutating func removeAll() {
        for index in levels.indices { levels[index].removeAll() }
        count = 0
    }

    /// When the longest-waiting job still queued (not cancelled) was queued, optionally only
    /// among one owner's jobs.
    func oldestQueuedAt(owner: String?? = .none) -> Date? {
        var oldest: Date?
        for entries in levels {
            for entry in entries where !entry.job.isFinished {
                if case .some(let wanted) = owner, entry.job.owner != wanted { continue }
                if oldest.map({ entry.queuedAt < $0 }) ?? true { oldest = entry.queuedAt }
                break // later entries of this level were queued later
            }
        }
        return oldest
    }
}
