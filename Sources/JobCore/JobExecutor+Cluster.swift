import Foundation

/// Several nodes on one store (PostgreSQL): a cancel reaches the node that holds the job, and
/// a job that runs elsewhere is watched here through the store's event log.
extension JobExecutor {
    /// The whole cluster's jobs by owner, kind and state, read from a store several nodes
    /// share; nil for a store one process owns (then ``counts`` sees every job). Blocks: call it
    /// off the event loop.
    public func clusterCounts() throws(StoreError) -> [JobCounts.Key: Int]? {
        try store.clusterCounts()
    }

    /// Cancels `job` (see ``Job/cancel()``). A job this node does not hold, on a store shared
    /// by several nodes, is asked of the cluster: the request is recorded in the store (so it
    /// survives) and reaches the node that holds the job within about a second, which cancels
    /// it as a local cancel would. The answer is then `.stopping`; the handle hears of the end
    /// from the store's log.
    public func cancel(_ job: Job) -> Job.CancelOutcome {
        guard store.eventLogPosition != nil, live.job(withID: job.id) !== job else { return job.cancel() }
        let status = job.snapshot().status
        guard !status.isFinished else { return .alreadyFinished(status) }
        store.apply(.cancelRequested(job.key, at: Date()), whenDurable: nil)
        logger.debug("Cancel asked of the node that holds the job", metadata: ["job.id": "\(job.id)"])
        return .stopping
    }

    /// Another node asked to cancel these jobs: cancel those held here. A job named again
    /// (the poll repeats open requests) is stopping already, and nothing changes.
    func cancelRequestedElsewhere(_ ids: [JobID]) {
        for id in ids {
            guard let job = live.job(withID: id) else { continue }
            if case .cancelled = job.cancel() {
                logger.debug("Cancelled at another node's request", metadata: ["job.id": "\(id)"])
            }
        }
    }

    /// Events from the store's log, in order: to the event stream, and to the handles watched
    /// here, which re-read their job (on the listener's thread: a blocking read is fine there).
    func take(_ events: [StoredJobEvent]) {
        changes.publishStored(events)
        var changed: [JobID] = []
        for event in events where !changed.contains(event.jobID) { changed.append(event.jobID) }
        for job in remote.held(changed) { refresh(job) }
        for event in events {
            guard let webhook = event.webhook, let job = cache.job(withID: event.jobID) else { continue }
            job.updateWebhook(state: webhook.state, attempts: webhook.attempts)
        }
    }

    /// Watches a job another node holds: its handle is registered before the store is read
    /// again, so that no change falls between the read that made it and the log.
    func watchRemote(_ job: Job) -> Job {
        let watched = remote.register(job)
        refresh(watched)
        return watched
    }

    /// Brings a watched handle up to what the store holds; a finished one moves to the cache.
    private func refresh(_ job: Job) {
        do throws(StoreError) {
            guard let stored = try store.job(withID: job.id) else { return }
            job.absorb(stored.record, webhookStatus: stored.webhookStatus)
            if stored.record.status.isFinished {
                cache.insert(job)
                remote.remove(job.id)
            }
        } catch {
            logger.warning("Could not read a job another node changed; its watchers hear of it at its next change",
                           metadata: ["job.id": "\(job.id)", "error": "\(error.message)"])
        }
    }
}

extension JobExecutor {
    /// Deletes up to `limit` logged events older than `cutoff` (a store that logs events);
    /// returns how many. Blocks on the store: call it on retention's thread.
    public func purgeEvents(before cutoff: Date, limit: Int) throws(StoreError) -> Int {
        try store.purgeEvents(before: cutoff, limit: limit)
    }
}
