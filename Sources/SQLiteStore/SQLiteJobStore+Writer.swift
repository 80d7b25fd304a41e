import Dispatch
import Foundation
import GRDB
import JobCore

extension SQLiteJobStore {
    /// The writer thread: takes what has queued up, commits it in one transaction, reports.
    func writerLoop() {
        queue.runWriter(logger: logger) { batch in commit(batch) }
    }

    /// Commits `batch` in one transaction and reports to each item. Returns the items to retry:
    /// when the write fails, submissions are refused (nothing acknowledged was lost) and every
    /// other change waits for the store to work again.
    ///
    /// Each submission runs in its own savepoint: one refused by a constraint (an idempotency
    /// key that another client's submission in the same batch took first) fails alone, and
    /// the rest of the batch commits.
    private func commit(_ batch: [Item]) -> [Item] {
        var refused: [Int: StoreError] = [:]
        let damage = integrityFailure
        do {
            try database.write { db in
                refused = [:]
                var counts = FinishedCounts()
                for (index, item) in batch.enumerated() {
                    guard case .submitted(let jobs) = item.change else {
                        try apply(item.change, in: db, counts: &counts)
                        continue
                    }
                    if let damage {
                        refused[index] = damage
                        continue
                    }
                    do {
                        // A submission of one statement needs no savepoint: a failing INSERT
                        // undoes itself (SQLite aborts the statement, not the transaction). A
                        // batch, or a key that retires an expired one first, has several.
                        if jobs.count > 1 || jobs.contains(where: { $0.options.idempotency != nil }) {
                            try db.inSavepoint {
                                try submit(jobs, in: db)
                                return .commit
                            }
                        } else {
                            try submit(jobs, in: db)
                        }
                    } catch let error as DatabaseError where Self.refusesSubmissionOnly(error) {
                        refused[index] = Self.refusal(of: jobs, error)
                    }
                }
                try counts.write(in: db)
            }
            if !writable.load(ordering: .relaxed) { logger.notice("The job store is writable again") }
            writable.store(true, ordering: .relaxed)
            for (index, item) in batch.enumerated() {
                item.completion?(refused[index].map { .failure($0) } ?? .success(()))
            }
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

    /// True for an error that is the submission's own (a constraint, a value too large), as
    /// opposed to the file's or the disk's, which fail the whole commit.
    static func refusesSubmissionOnly(_ error: DatabaseError) -> Bool {
        [.SQLITE_CONSTRAINT, .SQLITE_TOOBIG].contains(error.resultCode)
    }
}
