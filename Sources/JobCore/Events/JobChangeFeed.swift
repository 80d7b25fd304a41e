import Foundation
import Synchronization

/// Where every job change is announced, for one consumer on another thread (the event loop's
/// event hub) to take in batches.
///
/// Producers (workers, the store's thread, webhook threads) only append under a lock. The
/// first change after the consumer last took its batch calls `wake` once; the consumer takes
/// everything that arrived meanwhile on its own schedule. So 30,000 submissions a second cost
/// as many appends but only as many wake-ups as the consumer has batches (ten a second for the
/// hub), rather than one each.
///
/// ```swift
/// let feed = JobChangeFeed()
/// feed.connect { loop.execute { hub.scheduleFlush() } }   // on the first change of a batch
/// let batch = feed.take()                                  // later, on the loop thread
/// ```
///
/// On a store that logs events for the whole cluster (PostgreSQL, see
/// ``JobStore/eventLogPosition``) the feed carries those instead: every node's changes, with
/// the log's IDs, and the changes of this process are not kept (the log has them too).
public final class JobChangeFeed: Sendable {
    /// One change: made in this process, or read from the store's event log.
    public enum Item: Sendable {
        case live(JobChange)
        /// Boxed: an event from the log is several times the size of a live change, and an
        /// unboxed case would make every item (copied on each append and take) that large.
        indirect case stored(StoredJobEvent)
        /// The store's log skipped its events up to this ID, unread: nobody on this node needed
        /// them while they went by (no stream was open, or they lie before every stream's
        /// position, or past the replay window's worth).
        case skipped(through: Int)
    }

    private struct State {
        var pending: [Item] = []
        /// Set once the feed carries the store's log: the newest event before the first one.
        var storedAfter: Int?
        /// Nil until a consumer connects; changes before that are not kept.
        var wake: (@Sendable () -> Void)?
        /// True from the wake-up until the consumer takes the batch.
        var isWakeSent = false
        /// The oldest position an open event stream reads after (nil: none is open), which the
        /// store's log must be read from.
        var streamsAfter: Int?
        /// The replay window's size: as many events as a reader coming after a quiet time may
        /// want.
        var replayCapacity = Int.max
        /// See ``storedSettled``.
        var settled = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Starts keeping changes; `wake` runs on a producer's thread when a batch begins, and
    /// must only hand off (``take()`` belongs to the consumer).
    public func connect(wake: @escaping @Sendable () -> Void) {
        state.withLock { $0.wake = wake }
    }

    /// Carries the store's event log from now on, starting after event `position`; changes
    /// made in this process are no longer kept. Call before the consumer connects.
    public func useStoredEvents(after position: Int) {
        state.withLock {
            $0.storedAfter = position
            $0.settled = position
        }
    }

    /// The newest logged event before the first this feed carries; nil when it carries the
    /// changes of this process.
    public var storedEventsStart: Int? { state.withLock { $0.storedAfter } }

    /// The consumer's open event streams need the store's events after `position` (the oldest
    /// of their positions), or none (nil: no stream is open). Set whenever that changes.
    public func streamsNeedEvents(after position: Int?) {
        state.withLock { $0.streamsAfter = position }
    }

    /// A stream is opening at `position`: from now on the events after it are needed, whatever
    /// the consumer said before (it says exactly once the stream is open).
    public func streamOpening(at position: Int) {
        state.withLock { $0.streamsAfter = min($0.streamsAfter ?? position, position) }
    }

    /// See ``streamsNeedEvents(after:)``.
    public var streamsAfter: Int? { state.withLock { $0.streamsAfter } }

    /// How many past events a stream may resume from (the consumer's replay window).
    public var replayCapacity: Int {
        get { state.withLock { $0.replayCapacity } }
        set { state.withLock { $0.replayCapacity = newValue } }
    }

    /// On a logged store: every event up to this ID is committed or never will be, as of the
    /// store's last look, whether it read them or not. A new stream may start after it: the
    /// events at or below it are in the tables already.
    public var storedSettled: Int { state.withLock { $0.settled } }

    func storedLogSettled(_ position: Int) {
        state.withLock { $0.settled = max($0.settled, position) }
    }

    /// The store's log went on past `position` unread (see ``Item/skipped(through:)``).
    func publishSkipped(through position: Int) {
        appendStored([.skipped(through: position)])
    }

    /// The store's events (in ID order, each once), for the consumer.
    public func publishStored(_ events: [StoredJobEvent]) {
        guard !events.isEmpty else { return }
        appendStored(events.map(Item.stored))
    }

    private func appendStored(_ items: [Item]) {
        let wake = state.withLock { state -> (@Sendable () -> Void)? in
            guard let wake = state.wake, state.storedAfter != nil else { return nil }
            state.pending += items
            guard !state.isWakeSent else { return nil }
            state.isWakeSent = true
            return wake
        }
        wake?()
    }

    /// The changes since the last call, oldest first; the next change wakes the consumer again.
    public func take() -> [Item] {
        state.withLock { state in
            state.isWakeSent = false
            let batch = state.pending
            state.pending.removeAll(keepingCapacity: true)
            return batch
        }
    }

    func publish(_ change: JobChange) {
        let wake = state.withLock { state -> (@Sendable () -> Void)? in
            guard let wake = state.wake, state.storedAfter == nil else { return nil }
            state.pending.append(.live(change))
            guard !state.isWakeSent else { return nil }
            state.isWakeSent = true
            return wake
        }
        wake?()
    }

    /// The hook for a job's state changes (see ``JobStateChangeHook``); a job coming into
    /// being is announced by ``created(_:)`` instead, once it is durable.
    func stateChanged(_ job: Job, from: JobState?, to: JobState) {
        guard let from, let event = JobChange.Event(from: from, to: to) else { return }
        publish(JobChange(job: job, event: event, status: to, at: Date()))
    }

    /// The job's final state is durable.
    func finished(_ job: Job, status: JobState) {
        guard let event = JobChange.Event(from: .running, to: status) else { return }
        publish(JobChange(job: job, event: event, status: status, at: Date()))
    }

    /// A shared store's rescue moved the job (of a dead node) to `status`: queued, or failed.
    func rescued(_ job: Job, status: JobState) {
        publish(JobChange(job: job, event: status == .queued ? .queued : .failed, status: status, at: Date()))
    }

    /// The job was accepted: durable, and queued or scheduled.
    func created(_ job: Job, status: JobState) {
        publish(JobChange(job: job, event: .created, status: status, at: Date()))
    }

    /// The job's webhook reached a final delivery state (the deliverer calls this).
    public func webhookSettled(_ job: Job, delivered: Bool) {
        publish(JobChange(job: job, event: delivered ? .webhookDelivered : .webhookFailed, status: job.snapshot().status, at: Date()))
    }
}
