import Foundation
import GRDB
import JobCore
import Logging
import Synchronization
import Testing
@testable import SQLiteStore

/// A store file in a folder of its own, removed with the folder when the test ends.
final class TemporaryStore: Sendable {
    let folder: URL
    let path: String

    init() {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("jobpool-store-\(UUID().uuidString)")
        path = folder.appendingPathComponent("jobs.sqlite").path
    }

    /// The store, started (its writer thread running).
    func open(readerCount: Int = 4) throws -> SQLiteJobStore {
        let store = try SQLiteJobStore(path: path, logger: Logger(label: "test"), readerCount: readerCount)
        store.start()
        return store
    }

    /// A plain connection to the file, beside the store (the owner lock is the store's own).
    /// It may leave a transaction open across calls, to hold the write lock.
    func connection() throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.allowsUnsafeTransactions = true
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    deinit { try? FileManager.default.removeItem(at: folder) }
}

/// Applies a change and waits until it is durable (or refused).
@discardableResult
func write(_ store: any JobStore, _ change: StoreChange) throws -> Result<Void, StoreError> {
    let outcome = submit(store, change)
    #expect(outcome.wait() == .success)
    return try #require(outcome.result)
}

/// A change applied to a store, whose outcome comes later.
final class PendingWrite: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Mutex<Result<Void, StoreError>?>(nil)

    func finish(_ result: Result<Void, StoreError>) {
        outcome.withLock { $0 = result }
        done.signal()
    }

    var result: Result<Void, StoreError>? { outcome.withLock { $0 } }
    var isFinished: Bool { result != nil }

    func wait(timeout: DispatchTime = .now() + 20) -> DispatchTimeoutResult { done.wait(timeout: timeout) }
}

/// Applies a change without waiting for it.
func submit(_ store: any JobStore, _ change: StoreChange) -> PendingWrite {
    let pending = PendingWrite()
    store.apply(change) { pending.finish($0) }
    return pending
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return try condition()
}

/// A job as a client would submit it; times are whole microseconds, as stored.
func makeJob(kind: String = "write_code", status: JobState = .queued, owner: String? = nil, createdAt: Date,
             webhook: WebhookTarget? = nil, idempotency: IdempotencyRecord? = nil, name: String = "alex") -> JobRecord {
    JobRecord(id: JobID(), kind: kind, input: .object(["name": .string(name)]), status: status,
              createdAt: createdAt, nextAttemptAt: status == .scheduled ? createdAt.addingTimeInterval(60) : nil,
              options: JobOptions(idempotency: idempotency), webhook: webhook, owner: owner)
}

/// A fixed starting time, so that tests do not depend on the clock; whole seconds.
let epoch = Date(timeIntervalSince1970: 1_800_000_000)

/// The query plan SQLite chooses for `sql`, one line per step.
func queryPlan(_ database: DatabasePool, _ sql: String, _ arguments: StatementArguments = []) throws -> String {
    try database.read { db in
        try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }.joined(separator: "\n")
    }
}
