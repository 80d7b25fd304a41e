import Synchronization

/// Handles of jobs that this node does not run but someone here watches: a `?wait`, a
/// `Prefer: wait`, a cancel waiting for its job to stop, a job's event stream, on a job that
/// another node sharing the store runs (or that waits in the shared table). The store's event
/// log brings their changes (``JobExecutor`` re-reads the job and the handle takes them on).
///
/// Held weakly: a handle nobody holds any more (its requests were answered) drops out, so
/// this holds no history.
final class RemoteJobs: Sendable {
    private struct Entry {
        weak var job: Job?
    }

    private let entries = Mutex<[JobID: Entry]>([:])

    /// The handle for `id`, if one is still held.
    func job(withID id: JobID) -> Job? {
        entries.withLock { $0[id]?.job }
    }

    /// Watches `job`, unless a handle for it is held already: returns the one to use.
    func register(_ job: Job) -> Job {
        entries.withLock { entries in
            if let held = entries[job.id]?.job { return held }
            if entries.count >= 1024 { entries = entries.filter { $0.value.job != nil } } // drop the released
            entries[job.id] = Entry(job: job)
            return job
        }
    }

    /// Stops watching (the job finished: the cache answers for it).
    func remove(_ id: JobID) {
        entries.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// True while some handle is still held.
    var isWatching: Bool {
        entries.withLock { entries in
            if entries.values.contains(where: { $0.job != nil }) { return true }
            entries.removeAll() // all released
            return false
        }
    }

    /// Every handle still held.
    func all() -> [Job] {
        entries.withLock { entries in entries.values.compactMap(\.job) }
    }

    /// The held handles among `ids`, each once.
    func held(_ ids: some Sequence<JobID>) -> [Job] {
        entries.withLock { entries in
            // Mostly none is watched, and the log passes every job of the cluster through here.
            guard !entries.isEmpty else { return [] }
            var seen = Set<JobID>()
            return ids.compactMap { id in seen.insert(id).inserted ? entries[id]?.job : nil }
        }
    }
}
