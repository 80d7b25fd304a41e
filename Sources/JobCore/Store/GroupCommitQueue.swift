import Dispatch
import Foundation
import Logging
import Synchronization

/// The queue in front of a durable store's writer thread, and the loop that thread runs: the
/// group commit both the SQLite and the PostgreSQL store use.
///
/// Callers ``append(_:completion:)`` changes from any thread; the writer takes whatever has
/// queued up and hands it to the store's `commit` as one batch, so that a burst of submissions
/// costs one sync. A batch of state changes only (nobody waits for those) waits a few
/// milliseconds for submissions to share its commit. What `commit` gives back is retried a
/// second later (the disk, or the database, is away), except once closing, when it is dropped
/// with an error in the log.
///
/// ```swift
/// let queue = GroupCommitQueue()
/// // start():  if queue.markStarted() { Thread { queue.runWriter(logger: logger, commit: commit); queue.writerExited() }.start() }
/// // apply():  queue.append(change, completion: whenDurable)
/// // close():  let (first, started) = queue.markClosing(); ...; queue.waitForWriter(timeout: .seconds(10))
/// ```
public final class GroupCommitQueue: Sendable {
    public typealias Completion = @Sendable (Result<Void, StoreError>) -> Void

    /// One change and who to tell once it is durable.
    public struct Item: Sendable {
        public var change: StoreChange
        public var completion: Completion?

        public var isSubmission: Bool {
            if case .submitted = change { return true }
            return false
        }
    }

    private struct State {
        var items: [Item] = []
        /// Set once by ``markClosing()``: no change is taken after it.
        var isClosing = false
        /// The writer runs (or ran); changes appended before it started wait for it.
        var isStarted = false
    }

    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)

    public init() {}

    /// Queues `change`; `completion` runs once it is committed, or with the reason it was not.
    /// After ``markClosing()`` it fails at once.
    public func append(_ change: StoreChange, completion: Completion?) {
        let queued = state.withLock { state -> Bool? in
            guard !state.isClosing else { return nil }
            state.items.append(Item(change: change, completion: completion))
            return state.items.count == 1
        }
        switch queued {
        case true?: wake.signal()
        case false?: break
        case nil: completion?(.failure(StoreError("the store is closed")))
        }
    }

    /// Changes waiting for the writer to take them.
    public var pendingCount: Int { state.withLock { $0.items.count } }

    /// True once closing began.
    public var isClosing: Bool { state.withLock { $0.isClosing } }

    /// Records that the writer starts; true only the first time, and never after closing began.
    public func markStarted() -> Bool {
        state.withLock { state in
            defer { state.isStarted = true }
            return !state.isStarted && !state.isClosing
        }
    }

    /// Begins closing: no change is taken from now on, and the writer returns once it has
    /// written what is queued. Returns whether this was the first call, and whether the writer
    /// had been started (if not, the caller runs ``runWriter(logger:idleInterval:whenIdle:commit:)``
    /// itself to write what was applied meanwhile).
    public func markClosing() -> (first: Bool, wasStarted: Bool) {
        let outcome = state.withLock { state -> (Bool, Bool) in
            defer { state.isClosing = true; state.isStarted = true }
            return (!state.isClosing, state.isStarted)
        }
        wake.signal()
        return outcome
    }

    /// Called by the writer thread when ``runWriter(logger:idleInterval:whenIdle:commit:)`` returns.
    public func writerExited() { exited.signal() }

    /// Waits for the writer to have exited; false if it is still writing after `timeout`.
    public func waitForWriter(timeout: Duration) -> Bool {
        exited.wait(timeout: .now() + timeout.dispatchInterval) == .success
    }

    /// The writer's loop, on the calling thread, until closing and nothing is left to write.
    /// `commit` writes a batch and returns what to retry. With an `idleInterval`, `whenIdle`
    /// runs after each such stretch with nothing to write (a health check, say).
    public func runWriter(logger: Logger, idleInterval: Duration? = nil, whenIdle: () -> Void = {},
                          commit: ([Item]) -> [Item]) {
        var retry: [Item] = []
        while true {
            // Sleep only while there is nothing to do; a wake-up that was used up by the short
            // wait below must not leave queued changes sitting here.
            if retry.isEmpty, state.withLock({ $0.items.isEmpty && !$0.isClosing }) {
                if let idleInterval {
                    if wake.wait(timeout: .now() + idleInterval.dispatchInterval) == .timedOut {
                        whenIdle()
                        continue
                    }
                } else {
                    wake.wait()
                }
            }
            let (taken, closing) = takeAll()
            var batch = retry + taken
            retry = []
            if batch.isEmpty {
                if closing { return }
                continue
            }
            if !closing, !batch.contains(where: \.isSubmission) {
                // Only state changes, which nobody waits for: give them a few milliseconds to
                // share a commit (and its sync) with the next submissions.
                _ = wake.wait(timeout: .now() + .milliseconds(5))
                batch += takeAll().items
            }
            let started = ContinuousClock.now
            retry = commit(Self.coalesced(batch))
            logger.trace("Group commit", metadata: ["changes": "\(batch.count)", "duration": "\(ContinuousClock.now - started)"])
            if !retry.isEmpty {
                if closing { // give up on what cannot be written; say so
                    logger.error("Could not write \(retry.count) changes before closing the store")
                    return
                }
                Thread.sleep(forTimeInterval: 1) // the store cannot write: try again shortly
            } else if state.withLock({ $0.isClosing && $0.items.isEmpty }) {
                // Re-read: the close may have come (and its wake-up been used) during the commit.
                return
            }
        }
    }

    private func takeAll() -> (items: [Item], closing: Bool) {
        state.withLock { state in
            defer { state.items.removeAll(keepingCapacity: true) }
            return (state.items, state.isClosing)
        }
    }

    /// Drops a job's "started" change when the same batch also finishes that attempt: the
    /// final write records the start time too, and one row update is cheaper than two.
    public static func coalesced(_ batch: [Item]) -> [Item] {
        var finished = Set<JobAttempt>()
        for item in batch {
            if case .finished(let key, let attempt, _, _, _, _, _, _, _, _) = item.change { finished.insert(JobAttempt(id: key.id, attempt: attempt)) }
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
    private struct JobAttempt: Hashable {
        var id: JobID
        var attempt: Int
    }
}
