import JobCore

/// The worker pool and the store's reader threads, behind the job executor.
struct WorkerPoolService: BlockingService {
    let executor: JobExecutor
    let drain: WorkDrain

    var name: String { "worker pool" }

    func start() { executor.start() }

    /// Drains the pool unless the HTTP service already did, then stops the reader threads,
    /// which the HTTP service used until it stopped.
    func stop() {
        drain.run()
        executor.reader.stop()
    }
}
