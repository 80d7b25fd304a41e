import Dispatch
import Foundation
import GRDB
import JobCore
import Logging
import Synchronization

/// The durable job store, and the source of truth: one SQLite file in WAL mode with
/// `synchronous=FULL` on the writer, so a commit is on disk when it returns.
///
/// All writes go through one writer thread that commits whatever has queued up in a single
/// transaction (group commit): a burst of submissions costs one fsync, and each submission is
/// acknowledged only after its commit. Questions (a job by ID, a page of a list, an
/// idempotency key) are answered on the pool's reader connections, which never wait for the
/// writer. Every query is served by an index (see `SQLiteJobStore+Schema.swift`), and the
/// counts of finished jobs are written once per commit, in the commit's transaction.
/// Nothing here may run on the event loop: the calls block.
///
/// ```swift
/// let store = try SQLiteJobStore(path: "data/jobpool.sqlite", logger: logger)
/// let live = try store.loadUnfinished()
/// store.apply(.submitted([record])) { result in /* durable, or not */ }
/// let job = try store.job(withID: id)
/// ```
public final class SQLiteJobStore: JobStore {
    typealias Item = GroupCommitQueue.Item

    public let path: String
    /// One writer connection (the writer thread's) and up to `readerCount` readers.
    let database: DatabasePool
    /// Held from before the file is opened until after it is closed: one process per store.
    private let ownerLock: StoreOwnerLock
    let logger: Logger
    /// The changes waiting for the writer thread, and its loop (group commit).
    let queue = GroupCommitQueue()
    let writable = Atomic<Bool>(true)
    let integrity = Mutex(IntegrityCheck.waiting)
    let lastStartRowsReadValue = Atomic<Int>(0)

    public var isDurable: Bool { true }

    /// The due work: this process holds the store's owner lock, so nobody else can claim it,
    /// and it is kept in memory (filled at start from the unfinished jobs, then as jobs are
    /// accepted).
    public let workQueue: any WorkQueue

    /// False while writes fail, and for good once the file failed its integrity check.
    public var isWritable: Bool { writable.load(ordering: .relaxed) && integrityFailure == nil }

    /// How many job rows the last ``loadUnfinished()`` read: the unfinished ones only, however
    /// many finished jobs are stored.
    public var lastStartRowsRead: Int { lastStartRowsReadValue.load(ordering: .relaxed) }

    /// Takes the store's owner lock, then opens (creating if needed, with mode 0600) and
    /// migrates the database at `path`. Throws, with a message for the operator, if another
    /// process owns the store, if this process may not write it, or if the file is not a
    /// jobpool database, is damaged, or was written by a newer jobpool; it never replaces such
    /// a file.
    ///
    /// The file's integrity check (`PRAGMA quick_check`, about a second for a million jobs)
    /// runs on its own thread once the store is open, rather than before the start; see
    /// `SQLiteJobStore+Integrity.swift`.
    ///
    /// - Parameters:
    ///   - readerCount: connections that answer queries at once; more callers wait.
    ///   - agingStep: how long a queued job waits to gain one priority level (see ``WorkQueue``).
    public init(path: String, logger: Logger, readerCount: Int = 4, agingStep: Duration = .seconds(10)) throws(StoreError) {
        workQueue = LocalWorkQueue(agingStep: agingStep)
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
            database = try Self.open(path: path, readerCount: readerCount, logger: logger)
        } catch {
            lock.release()
            throw error
        }
        ownerLock = lock
    }

    /// Starts the writer thread, which writes whatever was applied before, and the background
    /// integrity check. No thread starts in `init`.
    public func start() {
        guard queue.markStarted() else { return }
        Thread { [self] in
            writerLoop()
            queue.writerExited()
        }.start()
        Thread { [self] in checkIntegrity() }.start()
    }

    public func apply(_ change: StoreChange, whenDurable completion: (@Sendable (Result<Void, StoreError>) -> Void)?) {
        queue.append(change, completion: completion)
    }

    public func close() {
        let (first, started) = queue.markClosing()
        guard first else { return }
        stopIntegrityCheck()
        if !started {
            // Never started (a start that failed, or a server stopped before it ran): write
            // what was applied meanwhile here, then close. With nothing queued this returns at once.
            writerLoop()
            queue.writerExited()
        }
        // Pending writes are flushed first; a store that cannot write gives up after a while.
        if queue.waitForWriter(timeout: .seconds(10)) {
            // Waits for reads in progress (the pool's barrier), then closes every connection.
            try? database.close()
            ownerLock.release()
        }
        // A writer stuck on a broken disk keeps the lock until the process exits, so that no
        // other process can start on the file while this one may still write to it.
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
