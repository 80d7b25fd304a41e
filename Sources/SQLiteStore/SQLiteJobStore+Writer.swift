import Dispatch
import Foundation
import GRDB
import JobCore

extension SQLiteJobStore {
    /// The writer thread: takes what has queued up, commits it in one transaction, reports.
    func writerLoop() {
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

    /// Drops a job's "started" change when the same batch also finishes that attempt: the
    /// final write records the start time too, and one row update is cheaper than two.
    static func coalesced(_ batch: [Item]) -> [Item] {
        var finished = Set<JobAttempt>()
        for item in batch {
            if case .finished(let key, let attempt, _, _, _, _, _, _) = item.change { finished.insert(JobAttempt(id: key.id, attempt: attempt)) }
        }
        guard !finished.isEmpty else { return batch }
        return batch.filter { item in
            if case .started(let key, let attempt, _) = item.change, item.completion == nil {
                return !finished.contains(JobAttempt(id: key.id, attempt: attempt))
            }
            return true
        }
    }

    /// One attempt of one job (formatting them as text, as this once did, cost a microsecond a job).
    struct JobAttempt: Hashable {
        var id: JobID
        var attempt: Int
    }
}
