import JobCore

/// The job store's writer: the first service up and the last down, so that every other
/// service's final writes reach it.
struct StoreService: BlockingService {
    let store: any JobStore

    var name: String { "store" }

    func start() { store.start() }

    /// Writes what is queued, then closes the store and lets go of its lock.
    func stop() { store.close() }
}
