import Dispatch
import Foundation
import GRDB
import JobCore
import Logging
import Synchronization

/// The durable job store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is
/// on disk when it returns.
///
/// All writes go through one writer thread that commits whatever has queued up in a single
/// transaction (group commit): a burst of submissions costs one fsync, and each submission is
/// acknowledged only after its commit. Nothing here runs on the event loop.
///
/// ```swift
/// let store = try SQLiteJobStore(path: "data/jobpool.sqlite", logger: logger)
/// store.apply(.submitted(record)) { result in /* durable, or not */ }
/// ```
public final class SQLiteJobStore: JobStore {
    typealias Completion = @Sendable (Result<Void, StoreError>) -> Void

    struct Item: Sendable {
        var change: StoreChange
        var completion: Completion?

        var isSubmission: Bool {
            if case .submitted = change { return true }
            return false
        }
    }

    private struct Queue {
        var items: [Item] = []
        var isClosing = false
    }

    public let path: String
    let database: DatabaseQueue
    /// Held from before the file is opened until after it is closed: one process per store.
    private let ownerLock: StoreOwnerLock
    let logger: Logger
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)
    private let writerExited = DispatchSemaphore(value: 0)
    private let writable = Atomic<Bool>(true)

    public var isDurable: Bool { true }
    public var isWritable: Bool { writable.load(ordering: .relaxed) }

    /// Takes the store's owner lock, then opens (creating if needed, with mode 0600) and
    /// migrates the database at `path`. Throws, with a message for the operator, if another
    /// process owns the store, if this process may not write it, or if the file is not a
    /// jobpool database, is damaged, or was written by a newer jobpool; it never replaces such
    /// a file.
    public init(path: String, logger: Logger) throws(StoreError) {
        // Absolute, so that every message names the file wherever jobpool was started, and with
        // the folder's symbolic links resolved, so that two names for one file share one lock.
        let requested = URL(fileURLWithPath: path).standardizedFileURL
        try Self.prepareFolder(for: requested.path)
        let path = requested.deletingLastPathComponent().resolvingSymlinksInPath().appendingPathComponent(requested.lastPathComponent).path
        self.path = path
        self.logger = logger
        // Nothing reads or writes the file before the lock is held.
        let lock = try StoreOwnerLock.acquire(storePath: path)
        do {
            database = try Self.open(path: path, logger: logger)
        } catch {
            lock.release()
            throw error
        }
        ownerLock = lock
        Thread { [self] in
            writerLoop()
            writerExited.signal()
        }.start()
    }

    public func apply(_ change: StoreChange, whenDurable completion: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        enum Outcome { case queued(wakeWriter: Bool), closed }
        let outcome = queue.withLock { queue -> Outcome in
            guard !queue.isClosing else { return .closed }
            queue.items.append(Item(change: change, completion: completion))
            return .queued(wakeWriter: queue.items.count == 1)
        }
        switch outcome {
        case .queued(let wakeWriter): if wakeWriter { wake.signal() }
        case .closed: completion?(.failure(StoreError("the store is closed")))
        }
    }

    public func close() {
        let first = queue.withLock { queue -> Bool in
            defer { queue.isClosing = true }
            return !queue.isClosing
        }
        guard first else { return }
        wake.signal()
        // Pending writes are flushed first; a store that cannot write gives up after a while.
        if writerExited.wait(timeout: .now() + .seconds(10)) == .success {
            try? database.close()
            ownerLock.release()
        }
        // A writer stuck on a broken disk keeps the lock until the process exits, so that no
        // other process can start on the file while this one may still write to it.
    }

    // MARK: - The writer thread

    private func writerLoop() {
        var retry: [Item] = []
        while true {
            // Sleep only while there is nothing to do; a wake-up that was used up by the
            // short wait below must not leave queued changes sitting here.
            if retry.isEmpty, queue.withLock({ $0.items.isEmpty && !$0.isClosing }) { wake.wait() }
            let (taken, closing) = queue.withLock { queue -> ([Item], Bool) in
                defer { queue.items.removeAll(keepingCapacity: true) }
                return (queue.items, queue.isClosing)
            }
            var batch = retry + taken
            retry = []
            if batch.isEmpty {
                if closing { return }
                continue
            }
            if !closing, !batch.contains(where: \.isSubmission) {
                // Only state changes, which nobody waits for: give them a few milliseconds to
                // share a commit (and its fsync) with the next submissions.
                _ = wake.wait(timeout: .now() + .milliseconds(5))
                batch += queue.withLock { queue in
                    defer { queue.items.removeAll(keepingCapacity: true) }
                    return queue.items
                }
            }
            let started = ContinuousClock.now
            retry = commit(Self.coalesced(batch))
            logger.trace("Group commit", metadata: ["changes": "\(batch.count)", "duration": "\(ContinuousClock.now - started)"])
            if !retry.isEmpty {
                if closing { // give up on what cannot be written; say so
                    logger.error("Could not write \(retry.count) changes before closing the store")
                    return
                }
                Thread.sleep(forTimeInterval: 1) // the disk is full or read-only: try again shortly
            } else if queue.withLock({ $0.isClosing && $0.items.isEmpty }) {
                // Re-read: the close may have come (and its wake-up been used) during the commit.
                return
            }
        }
    }

    /// Commits `batch` in one transaction and reports to each item. Returns the items to retry:
    /// when the write fails, submissions are refused (nothing acknowledged was lost) and every
    /// other change waits for the store to work again.
    private func commit(_ batch: [Item]) -> [Item] {
        do {
            try database.write { db in
                for item in batch { try apply(item.change, in: db) }
            }
            if !writable.load(ordering: .relaxed) { logger.notice("The job store is writable again") }
            writable.store(true, ordering: .relaxed)
            for item in batch { item.completion?(.success(())) }
            return []
        } catch {
            let failure = StoreError(Self.describe(error, path: path))
            if writable.load(ordering: .relaxed) { logger.error("Job store write failed", metadata: ["error": "\(failure.message)"]) }
            writable.store(false, ordering: .relaxed)
            var retry: [Item] = []
            for item in batch {
                if case .submitted = item.change {
                    item.completion?(.failure(failure))
                } else {
                    retry.append(item)
                }
            }
            return retry
        }
    }

    /// Drops a job's "started" change when the same batch also finishes that attempt: the
    /// final write records the start time too, and one row update is cheaper than two.
    static func coalesced(_ batch: [Item]) -> [Item] {
        var finished = Set<String>()
        for item in batch {
            if case .finished(let key, let attempt, _, _, _, _, _, _) = item.change { finished.insert("\(key.id)#\(attempt)") }
        }
        guard !finished.isEmpty else { return batch }
        return batch.filter { item in
            if case .started(let key, let attempt, _) = item.change, item.completion == nil {
                return !finished.contains("\(key.id)#\(attempt)")
            }
            return true
        }
    }

    static func describe(_ error: any Error, path: String) -> String {
        guard let error = error as? DatabaseError else { return "\(error)" }
        switch error.resultCode {
        case .SQLITE_FULL: return "the disk holding \(path) is full"
        case .SQLITE_READONLY: return "\(path) is read-only"
        case .SQLITE_IOERR: return "an I/O error occurred writing \(path)"
        case .SQLITE_CANTOPEN: return "\(path) cannot be opened"
        case .SQLITE_NOTADB: return "\(path) is not a SQLite database"
        case .SQLITE_CORRUPT: return "\(path) is damaged"
        default: return "SQLite error \(error.resultCode.rawValue): \(error.message ?? "unknown") on \(path)"
        }
    }
}
