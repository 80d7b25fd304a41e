import DequeModule
import Synchronization

/// Recently finished or recently read jobs, so that a client polling a job it just submitted
/// is answered from memory (with its cached JSON) instead of the store. Bounded by an estimate
/// of the bytes held; the oldest entries go first. A job that has left it is read from the
/// store, which is the source of truth.
final class FinishedJobCache: Sendable {
    private struct State {
        var byID: [JobID: (job: Job, bytes: Int, hasWebhook: Bool)] = [:]
        var order = Deque<JobID>()
        var bytes = 0
        /// Entries whose job has a webhook.
        var webhookJobs = 0

        mutating func remove(_ id: JobID) -> Job? {
            guard let removed = byID.removeValue(forKey: id) else { return nil }
            bytes -= removed.bytes
            if removed.hasWebhook { webhookJobs -= 1 }
            return removed.job
        }
    }

    /// The most bytes held (`--cache-bytes`); 0 keeps nothing.
    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// - Parameter snapshot: the job as it stands, when the caller has one (saves taking another).
    func insert(_ job: Job, snapshot: JobSnapshot? = nil) {
        let snapshot = snapshot ?? job.snapshot()
        let size = Self.estimatedBytes(of: snapshot)
        let hasWebhook = snapshot.webhook != nil
        guard size <= capacity else { return }
        // The jobs pushed out are freed here, after the lock: freeing a job and its values
        // takes microseconds, which readers of the cache should not wait through.
        let evicted = state.withLock { state -> [Job] in
            if state.remove(job.id) == nil { state.order.append(job.id) }
            state.byID[job.id] = (job, size, hasWebhook)
            state.bytes += size
            if hasWebhook { state.webhookJobs += 1 }
            var evicted: [Job] = []
            while state.bytes > capacity, let oldest = state.order.popFirst() {
                if let removed = state.remove(oldest) { evicted.append(removed) }
            }
            return evicted
        }
        _ = evicted
    }

    func job(withID id: JobID) -> Job? {
        state.withLock { $0.byID[id]?.job }
    }

    /// Drops jobs the store no longer has (retention, eviction).
    func remove(_ ids: some Sequence<JobID>) {
        state.withLock { state in
            for id in ids { _ = state.remove(id) }
            if state.order.count > 2 * state.byID.count + 64 { state.order.removeAll { state.byID[$0] == nil } }
        }
    }

    /// Drops the jobs with a webhook (their delivery state may have changed unseen).
    func removeWebhookJobs() {
        state.withLock { state in
            guard state.webhookJobs > 0 else { return }
            for id in state.byID.compactMap({ $0.value.hasWebhook ? $0.key : nil }) { _ = state.remove(id) }
            state.order.removeAll { state.byID[$0] == nil } // an ID cached again must not meet its old place first
        }
    }

    var count: Int { state.withLock { $0.byID.count } }
    /// True while some cached job has a webhook (another node may change its delivery state).
    var holdsWebhookJobs: Bool { state.withLock { $0.webhookJobs > 0 } }
    var byteCount: Int { state.withLock { $0.bytes } }

    /// Roughly what a finished job costs in memory, erring high so that the cache stays within
    /// its bytes: the job object, its lock and callbacks, and its values (Swift dictionaries
    /// and strings take about three times their text), plus the rendered JSON kept once it
    /// has been served. bench/store-scale.sh measured about 2.8 KB of RSS per write_code job.
    static func estimatedBytes(of snapshot: JobSnapshot) -> Int {
        let values = snapshot.input.estimatedBytes + (snapshot.result?.estimatedBytes ?? 0)
            + (snapshot.error.map { $0.message.utf8.count + $0.code.utf8.count } ?? 0)
        return 1536 + 4 * values
    }
}

extension JSONValue {
    /// A rough size in memory: the bytes of its strings and 16 for every other value.
    var estimatedBytes: Int {
        switch self {
        case .string(let text): return 16 + text.utf8.count
        case .array(let items): return 16 + items.reduce(0) { $0 + $1.estimatedBytes }
        case .object(let members): return 16 + members.reduce(0) { $0 + $1.key.utf8.count + $1.value.estimatedBytes }
        default: return 16
        }
    }
}
