import Dispatch
import Foundation
import JobCore
import Postgres

extension PostgresJobStore {
    /// A writer thread: takes what has queued up in its lane, commits it in one transaction,
    /// reports. While idle it checks now and then that the database still answers, so that
    /// readiness turns false when the database goes away even if nothing is being written.
    func writerLoop(_ lane: PostgresWriterLane) {
        lane.queue.runWriter(logger: logger, idleInterval: healthCheckInterval, whenIdle: { checkHealth(lane) }) { batch in
            commit(batch, in: lane)
        }
    }

    /// Commits `batch` in one transaction and reports to each item. Returns the items to retry:
    /// when the write fails, submissions are refused (nothing acknowledged was lost) and every
    /// other change waits for the database to come back.
    ///
    /// The batch is first written as it comes, every submission without a savepoint. If a
    /// submission's own rows are refused (an idempotency key taken by another submission at the
    /// same moment, on this node or another), PostgreSQL aborts the whole transaction; the
    /// batch is then written again with each submission in a savepoint of its own, so that the
    /// refused one fails alone. Savepoints cost two round trips each, paid only then.
    private func commit(_ batch: [Item], in lane: PostgresWriterLane) -> [Item] {
        // Before the transaction, so that none of its locks is held meanwhile.
        claims.waitUntilCommitted(batch.lazy.compactMap { Self.fencedAttempt(of: $0.change)?.id })
        var conflicts = 0
        while true {
            do {
                let refused = try lane.connection.withLock { connection -> [Int: StoreError] in
                    let connection = try connected(&connection)
                    do {
                        return try write(batch, on: connection, isolatingSubmissions: false)
                    } catch let error as PostgresError where error.isRefusalOfData {
                        return try write(batch, on: connection, isolatingSubmissions: true)
                    }
                }
                noteWritable(true, error: nil)
                // An attempt's outcome is written (or was stale): its claim is over either way.
                claims.remove(batch.compactMap { Self.fencedAttempt(of: $0.change) })
                for (index, item) in batch.enumerated() {
                    item.completion?(refused[index].map { .failure($0) } ?? .success(()))
                }
                return []
            } catch let error as PostgresError where error.isRetryableTransactionFailure && conflicts < 3 {
                conflicts += 1 // a deadlock or serialization failure: nothing was written; run it again
                logger.debug("Group commit retried", metadata: ["error": "\(error)"])
            } catch {
                let failure = StoreError("cannot write to the job store at \(target.redacted): \(target.scrub("\(error)"))")
                noteWritable(false, error: failure)
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
    }

    /// Writes `batch` in one transaction. Returns the submissions refused, by index; only with
    /// `isolatingSubmissions` can there be any (without, a refusal aborts the transaction).
    private func write(_ batch: [Item], on connection: PostgresConnection, isolatingSubmissions: Bool) throws -> [Int: StoreError] {
        try connection.transaction {
            var refused: [Int: StoreError] = [:]
            let queuedInBatch = batch.reduce(0) { total, item in
                guard case .submitted(let jobs) = item.change else { return total }
                return total + jobs.count { $0.status == .queued }
            }
            var admission = Admission(limits: claimer.limits, bound: admissionBound, queuedInBatch: queuedInBatch)
            // The admission lock first, before any row lock of this batch: taken after them, two
            // nodes could each hold what the other waits for (a row here, the lock there).
            if admission.limits != nil, batch.contains(where: Self.queuesJobs) {
                _ = try connection.query("SELECT pg_advisory_xact_lock($1::bigint)", [Self.admissionLockKey])
            }
            var run = AttemptRun()
            for (index, item) in batch.enumerated() {
                if run.add(item.change, index: index) { continue }
                for stale in try write(run, on: connection) { refused[stale] = Self.staleAttempt(batch[stale]) }
                run = AttemptRun()
                if run.add(item.change, index: index) { continue }
                guard case .submitted(let jobs) = item.change else {
                    if try !apply(item.change, on: connection) { refused[index] = Self.staleAttempt(item) }
                    continue
                }
                // Submissions without a key are written last, together (below).
                if !isolatingSubmissions, !Self.hasKeys(jobs) { continue }
                if let refusal = try admission.refusal(of: jobs, on: connection) {
                    refused[index] = refusal
                    continue
                }
                if !isolatingSubmissions {
                    try submit(jobs, on: connection)
                    continue
                }
                do {
                    try connection.savepoint("submission") { try submit(jobs, on: connection) }
                } catch let error as PostgresError where error.isRefusalOfData {
                    refused[index] = Self.refusal(of: jobs, error)
                }
            }
            for stale in try write(run, on: connection) { refused[stale] = Self.staleAttempt(batch[stale]) }
            if !isolatingSubmissions {
                // Submissions without a key cannot conflict: their rows go in together, in as
                // few statements as possible, after every other change (none of which can name
                // these jobs: a job is accepted, and so changed, only once committed), so that
                // the queue limits count what the batch's cancels and finishes left.
                var plain: [JobRecord] = []
                for (index, item) in batch.enumerated() {
                    guard case .submitted(let jobs) = item.change, !Self.hasKeys(jobs) else { continue }
                    if let refusal = try admission.refusal(of: jobs, on: connection) {
                        refused[index] = refusal
                    } else {
                        plain += jobs
                    }
                }
                try insert(plain, on: connection)
            }
            // One notification per committed batch, sent by the commit itself (none if it
            // rolls back): NOTIFY serializes commits, so one per batch is what it may cost.
            let notice = Self.notice(for: batch)
            if !notice.isEmpty { try connection.notify(PostgresListener.channel, payload: notice.payload) }
            return refused
        }
    }

    private static func staleAttempt(_ item: Item) -> StoreError {
        switch item.change {
        case .webhookAttempted(let id, _, _, _), .webhookRedelivered(let id, _), .webhookRendered(let id, _):
            return StoreError.staleDelivery(id)
        default:
            return StoreError.staleAttempt(fencedAttempt(of: item.change)?.id ?? JobID())
        }
    }

    /// The attempt a fenced write is about: a finish, a retry or a hand-back of a running attempt.
    static func fencedAttempt(of change: StoreChange) -> (id: JobID, attempt: Int)? {
        switch change {
        case .finished(let key, let attempt, _, _, _, _, _, _, _, _), .retrying(let key, let attempt, _, _, _, _): return (key.id, attempt)
        case .requeued(let key, let attempt, let interrupted): return (key.id, interrupted?.attempt ?? attempt)
        default: return nil
        }
    }

    /// What `batch` tells the other nodes: due work (wakes their claimers), job changes (their
    /// event tailers read), and the jobs whose cancel was asked for.
    static func notice(for batch: [Item]) -> PostgresNotice {
        var notice = PostgresNotice()
        for item in batch {
            switch item.change {
            case .submitted(let jobs):
                notice.events = true
                if jobs.contains(where: { $0.status == .queued }) { notice.work = true }
            case .requeued:
                notice.events = true
                notice.work = true
            case .started, .finished, .retrying, .webhookAttempted:
                notice.events = true
            case .cancelRequested(let key, _):
                notice.cancels.append(key.id.description)
            case .webhookRedelivered, .webhookRendered, .purged:
                break
            }
        }
        return notice
    }

    /// A submission with a job to queue (which the queue limits count).
    static func queuesJobs(_ item: Item) -> Bool {
        guard case .submitted(let jobs) = item.change else { return false }
        return jobs.contains { $0.status == .queued }
    }

    static func hasKeys(_ jobs: [JobRecord]) -> Bool {
        jobs.contains { $0.options.idempotency != nil }
    }

    /// A writer's connection: made on first use, and again if it broke (said in the log).
    func connected(_ connection: inout PostgresConnection?) throws -> PostgresConnection {
        if let open = connection, !open.isBroken { return open }
        let reconnecting = connection != nil
        connection?.close()
        // The database may not be the one the queue was last counted in (a failover).
        if reconnecting { admissionBound.reset() }
        connection = nil
        let fresh = try PostgresConnection(connectingTo: target, settings: Self.writerSettings(nodeID: nodeID))
        connection = fresh
        if reconnecting { logger.notice("Reconnected to the job store", metadata: ["store": "\(target.redacted)"]) }
        return fresh
    }

    /// Checks, while nothing is written, that the database answers.
    private func checkHealth(_ lane: PostgresWriterLane) {
        do {
            try lane.connection.withLock { connection in
                _ = try connected(&connection).execute("SELECT 1")
            }
            noteWritable(true, error: nil)
        } catch {
            noteWritable(false, error: StoreError("the job store at \(target.redacted) does not answer: \(target.scrub("\(error)"))"))
        }
    }

    /// Records whether writes work, logging each change once.
    private func noteWritable(_ isWritable: Bool, error: StoreError?) {
        let was = writable.exchange(isWritable, ordering: .relaxed)
        if isWritable, !was { logger.notice("The job store is writable again", metadata: ["store": "\(target.redacted)"]) }
        if !isWritable, was, let error { logger.error("Job store write failed", metadata: ["error": "\(error.message)"]) }
    }
}
