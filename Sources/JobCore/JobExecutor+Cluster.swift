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
    /// from the store's log. A job waiting here is cancelled by the table (``cancelWaiting(_:askingOthers:)``).
    public func cancel(_ job: Job) -> Job.CancelOutcome {
        guard store.eventLogPosition != nil else { return job.cancel() }
        guard live.job(withID: job.id) !== job else { return cancelWaiting(job, askingOthers: true) }
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
            if case .stopping = cancelWaiting(job, askingOthers: false) {
                logger.debug("Cancelled at another node's request", metadata: ["job.id": "\(id)"])
            }
        }
    }

    /// Cancels a job held here on a shared store. One that runs here stops as a local cancel
    /// would. One that waits here may have been claimed by another node since this node last
    /// looked at the table (it learns that within about a second), so the table decides: the
    /// cancel is written only if the row still waits, and the job takes it only once that
    /// write committed. Until then the answer is `.stopping` (the caller waits on the job). If
    /// the row was claimed meanwhile, the cancel becomes a request to the node that runs it
    /// (`askingOthers`; a request from elsewhere has reached that node already), and this
    /// node looks at the table at once and hands its copy off, so that its waiters and reads
    /// follow the job's real end.
    func cancelWaiting(_ job: Job, askingOthers: Bool) -> Job.CancelOutcome {
        let snapshot = job.snapshot()
        guard snapshot.status == .queued || snapshot.status == .scheduled else { return job.cancel() }
        let now = Date()
        var final = snapshot
        final.status = .cancelled
        final.error = .cancelled
        final.finishedAt = now
        final.nextAttemptAt = nil
        final.lastError = nil // as a finished job's snapshot shows it
        final.version += 1
        let event = job.webhook != nil ? completionHandler?.makeEvent(for: job, final: final) : nil
        let change = StoreChange.finished(job.key, attempt: snapshot.attempt, startedAt: nil, status: .cancelled, result: nil,
                                          error: .cancelled, at: now, event: event, owner: job.owner, kind: job.kind)
        store.apply(change) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success:
                // The table says cancelled. The copy normally takes it now. It may have left the
                // waiting states meanwhile: this node claimed the row and started it just before
                // the cancel committed (the write carries this node's claim, so it applied):
                // then it is stopped, and its own outcome will be refused; or the node's look
                // handed it off and read the cancel back. Either way the event committed with the
                // cancel is this node's to send.
                if !job.cancelRecorded(at: now), job.currentStatus == .running { _ = job.cancel() }
                if let event { completionHandler?.eventCommitted(event, job: job) }
            case .failure(let error) where error.isStale:
                if job.currentStatus == .running { // this node claimed it meanwhile
                    _ = job.cancel()
                    return
                }
                if askingOthers {
                    store.apply(.cancelRequested(job.key, at: now), whenDurable: nil)
                    logger.debug("A waiting job was claimed elsewhere: cancel asked of that node", metadata: ["job.id": "\(job.id)"])
                }
                // The queue's look hands the copy off (not this code: the job may sit in this
                // node's own claim buffer, about to run here, which only the table can tell).
                store.workQueue.lookAroundSoon()
            case .failure:
                return // the store writes a final state until it can; nothing else to do
            }
        }
        return .stopping
    }

    /// Events from the store's log, in order: to the event stream, and to the handles watched
    /// here, which re-read their job (on the listener's thread: a blocking read is fine there).
    func take(_ events: [StoredJobEvent]) {
        changes.publishStored(events)
        refresh(remote.held(events.lazy.map(\.jobID)))
        for event in events {
            guard let webhook = event.webhook, let job = cache.job(withID: event.jobID) else { continue }
            job.updateWebhook(state: webhook.state, attempts: webhook.attempts)
        }
    }

    /// What this node needs of the store's event log now: the events after its streams'
    /// positions; the next events of the jobs of other nodes that someone here watches; those of
    /// the cached jobs with a webhook, which another node may deliver (a redelivery asked of
    /// it). Otherwise the log goes by unread.
    var storedEventNeed: EventLogNeed {
        let streamsAfter = changes.streamsAfter
        return EventLogNeed(isNeeded: streamsAfter != nil || remote.isWatching || cache.holdsWebhookJobs,
                            streamsAfter: streamsAfter, keeping: changes.replayCapacity)
    }

    /// The log skipped events nobody here needed as they went by: the event stream's window
    /// starts again after them, the watched jobs are read from the store, and the cached jobs
    /// with a webhook are dropped (read from the store when next asked for).
    func storedEventsSkipped(through position: Int) {
        changes.publishSkipped(through: position)
        cache.removeWebhookJobs()
        refreshWatched()
    }

    /// Reads every watched handle again from the store, for when the log cannot say what
    /// changed (on the listener's thread, like ``take(_:)``).
    func refreshWatched() {
        refresh(remote.all())
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
            absorb(stored, into: job)
        } catch {
            logger.warning("Could not read a job another node changed; its watchers hear of it at its next change",
                           metadata: ["job.id": "\(job.id)", "error": "\(error.message)"])
        }
    }

    /// The same for many handles, read from the store a thousand at a time rather than one by
    /// one: a node may watch many jobs (a `?wait` each), and each poll while the log is held
    /// back, or each batch of the log's events, may touch them all.
    func refresh(_ jobs: [Job]) {
        if jobs.count == 1, let job = jobs.first { return refresh(job) }
        for start in stride(from: 0, to: jobs.count, by: Self.refreshBatchSize) {
            let batch = jobs[start..<min(start + Self.refreshBatchSize, jobs.count)]
            do throws(StoreError) {
                let stored = try store.jobs(withIDs: batch.map(\.id))
                let byID = Dictionary(stored.map { ($0.record.id, $0) }, uniquingKeysWith: { first, _ in first })
                for job in batch {
                    if let stored = byID[job.id] { absorb(stored, into: job) }
                }
            } catch {
                logger.warning("Could not read jobs another node changed; their watchers hear of them at their next change",
                               metadata: ["count": "\(batch.count)", "job.id": "\(batch.first?.id.description ?? "")",
                                          "error": "\(error.message)"])
            }
        }
    }

    /// Jobs read per statement by ``refresh(_:)``.
    static let refreshBatchSize = 1000

    /// Takes what the store holds into a watched handle; a finished one moves to the cache.
    private func absorb(_ stored: StoredJob, into job: Job) {
        job.absorb(stored.record, webhookStatus: stored.webhookStatus)
        if stored.record.status.isFinished {
            cache.insert(job)
            remote.remove(job.id)
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
