import Foundation
import GRDB
import JobCore
import StoreTestSupport
import Logging
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

/// The query plan SQLite chooses for `sql`, one line per step.
func queryPlan(_ database: DatabasePool, _ sql: String, _ arguments: StatementArguments = []) throws -> String {
    try database.read { db in
        try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }.joined(separator: "\n")
    }
}
