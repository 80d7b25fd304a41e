import Dispatch
import Foundation
import Synchronization

/// The work a job runs on a worker thread: its input already checked and captured.
public typealias JobWork = @Sendable (JobContext) throws(JobFailure) -> JSONValue

/// Told of every state change of a job (`from` is nil when the job comes into being), after
/// the change and outside the job's lock.
public typealias JobStateChangeHook = @Sendable (_ job: Job, _ from: JobState?, _ to: JobState) -> Void

/// A submitted job and its handle, like Python's `concurrent.futures.Future`.
///
/// ```swift
/// let job = try executor.submit(kind: "write_code", input: ["name": "alex"])
/// job.addDoneCallback { snapshot in print(snapshot.result ?? .null) }
/// let finished = job.result(timeout: .seconds(10))   // nil if still running by then
/// ```
public final class Job: Sendable {
    public let id: JobID
    public let kind: String
    public let input: JSONValue
    public let createdAt: Date
    /// The completion webhook, if the client registered one.
    public let webhook: WebhookTarget?
    /// Who submitted it (an API key's tenant ID), or nil when access control is off.
    public let owner: String?
    public let options: JobOptions
    let work: JobWork
    private let onStateChange: JobStateChangeHook?
    private let state: Mutex<State>

    private struct State {
        var status: JobState
        var attempt: Int
        var nextAttemptAt: Date?
        var result: JSONValue?
        var error: JobFailure?
        var lastError: JobFailure?
        var startedAt: Date?
        var finishedAt: Date?
        /// The running attempt's stop signal; each attempt gets a fresh one.
        var signal = CancellationSignal()
        /// Why the running attempt was asked to stop, set under this lock by ``stop(_:attempt:)``
        /// before the signal is raised. The decision to retry reads it under the same lock, so
        /// a stop that lands while the work is returning can never be lost to a retry.
        var stopRequest: StopReason?
        /// Handed the job itself, so that none needs to capture it (see ``whenFinished(_:)``).
        var callbacks: [@Sendable (Job, JobSnapshot) -> Void] = []
        var observers: [Int: @Sendable (JobSnapshot) -> Void] = [:]
        var nextObserverID = 0
        /// Bumped on every visible change, so a reader can tell whether its copy is current.
        var version = 0
        /// A rendering of the job at `version`, kept for whoever made it (the HTTP layer
        /// caches its JSON here, so a finished job polled a thousand times is encoded once).
        var rendering: (version: Int, bytes: [UInt8], digest: String)?
        var webhookStatus: WebhookStatus?
        /// Gives back the job's place in the worker pool's queue; set while it is queued.
        var releaseQueueSlot: (@Sendable () -> Void)?
        /// The final state was written to the store before this object took it (a cancel of a
        /// waiting job on a shared store, decided by the table): the completer writes nothing.
        var finalRecorded = false

        /// Takes a stored record's outcome, times and webhook (its status and attempt are
        /// set by the caller).
        mutating func take(_ record: JobRecord, webhookStatus: WebhookStatus?) {
            result = record.result
            if record.status.isFinished { error = record.error } else { lastError = record.error }
            startedAt = record.status.isFinished || record.status == .running ? record.startedAt : nil
            finishedAt = record.finishedAt
            nextAttemptAt = record.status == .scheduled ? record.nextAttemptAt : nil
            if let webhookStatus { self.webhookStatus = webhookStatus }
        }
    }

    /// What ``cancel()`` did.
    public enum CancelOutcome: Sendable, Equatable {
        /// The job was scheduled or queued and is now `cancelled`.
        case cancelled
        /// The job is running; it has been asked to stop and will end shortly: `cancelled`, unless
        /// an earlier stop (its time limit, a shutdown) decides the reason, or it succeeds anyway.
        case stopping
        /// The job had already finished in this state; nothing changed.
        case alreadyFinished(JobState)
    }

    /// What one run of the job came to.
    enum RunOutcome: Equatable {
        case finished
        /// A retryable failure with attempts left: the job is `scheduled` again.
        case retry(RetryPlan)
    }

    init(id: JobID? = nil, kind: String, input: JSONValue, createdAt: Date, webhook: WebhookTarget? = nil,
         owner: String? = nil, options: JobOptions = JobOptions(), status: JobState = .queued, attempt: Int = 1,
         onStateChange: JobStateChangeHook? = nil, announcesCreation: Bool = true, work: @escaping JobWork) {
        self.owner = owner
        self.id = id ?? JobID(now: createdAt) // time-ordered like created_at, so the store's ID index appends
        self.kind = kind
        self.input = input
        self.createdAt = createdAt
        self.webhook = webhook
        self.options = options
        self.work = work
        self.onStateChange = onStateChange
        var initial = State(status: status, attempt: attempt)
        if status == .scheduled { initial.nextAttemptAt = options.runAt }
        if let webhook { initial.webhookStatus = WebhookStatus(url: webhook.url, state: .pending, attempts: 0) }
        state = Mutex(initial)
        if announcesCreation { onStateChange?(self, nil, status) }
    }

    /// How the store names this job.
    public var key: JobKey { JobKey(id: id, createdAt: createdAt) }
    public var maxAttempts: Int { options.maxAttempts }
    /// The current attempt, from 1.
    public var attempt: Int { state.withLock { $0.attempt } }

    /// A job as it was stored. A job that was running runs again; the caller has set
    /// `record.status` to `.queued` and the attempt for that.
    convenience init(restoring record: JobRecord, webhookStatus: WebhookStatus?, onStateChange: JobStateChangeHook?,
                     work: @escaping JobWork) {
        self.init(id: record.id, kind: record.kind, input: record.input, createdAt: record.createdAt,
                  webhook: record.webhook, owner: record.owner, options: record.options, status: record.status,
                  attempt: record.attempt, onStateChange: onStateChange, announcesCreation: false, work: work)
        state.withLock { $0.take(record, webhookStatus: webhookStatus) }
    }

    /// The record to store for this job as it stands.
    func record() -> JobRecord {
        let snapshot = snapshot()
        return JobRecord(id: id, kind: kind, input: input, status: snapshot.status, result: snapshot.result,
                         error: snapshot.error ?? snapshot.lastError, createdAt: createdAt, startedAt: snapshot.startedAt,
                         finishedAt: snapshot.finishedAt, nextAttemptAt: snapshot.nextAttemptAt, attempt: snapshot.attempt,
                         options: options, webhook: webhook, owner: owner)
    }

    /// Takes on the state the store holds for a job that another node runs (a handle watched
    /// here, see ``RemoteJobs``): observers and done-callbacks are told as for a change made
    /// here; the state-change hook is not (this node counts and announces only its own jobs).
    /// A state older than the one held is ignored, and a finished job never changes again.
    func absorb(_ record: JobRecord, webhookStatus: WebhookStatus?) {
        func rank(_ status: JobState) -> Int {
            switch status {
            case .scheduled: 0
            case .queued: 1
            case .running: 2
            case .succeeded, .failed, .cancelled: 3
            }
        }
        let told = state.withLock { state -> (JobSnapshot, [@Sendable (JobSnapshot) -> Void], [@Sendable (Job, JobSnapshot) -> Void])? in
            guard !state.status.isFinished,
                  record.attempt > state.attempt || (record.attempt == state.attempt && rank(record.status) > rank(state.status))
            else { return nil }
            state.status = record.status
            state.attempt = record.attempt
            state.take(record, webhookStatus: webhookStatus)
            state.version += 1
            let observers = Array(state.observers.values)
            var callbacks: [@Sendable (Job, JobSnapshot) -> Void] = []
            if record.status.isFinished {
                callbacks = state.callbacks
                state.callbacks = []
                state.observers = [:]
            }
            return (makeSnapshot(state), observers, callbacks)
        }
        guard let (snapshot, observers, callbacks) = told else { return }
        for observer in observers { observer(snapshot) }
        for callback in callbacks { callback(self, snapshot) }
    }

    /// Ends a waiting job without running it (recovery found it out of attempts, say).
    func fail(_ failure: JobFailure) {
        _ = finish(.failure(failure), onlyIf: .waiting)
    }

    /// Records the webhook's progress (the deliverer calls this), so the job shows it.
    public func updateWebhook(state webhookState: WebhookState, attempts: Int) {
        state.withLock { state in
            guard var status = state.webhookStatus else { return }
            status.state = webhookState
            status.attempts = attempts
            state.webhookStatus = status
            state.version += 1
        }
    }

    /// Its state now, without a whole snapshot (a list filter reads it for every job it passes).
    public var currentStatus: JobState { state.withLock { $0.status } }

    /// What an event about the job shows beyond the change itself, without a whole snapshot
    /// (which copies the input and result): the event stream records three events per job.
    public func eventDetails() -> (status: JobState, attempt: Int, error: JobFailure?, lastError: JobFailure?, webhook: WebhookStatus?) {
        state.withLock { ($0.status, $0.attempt, $0.error, $0.lastError, $0.webhookStatus) }
    }

    /// The job as it stands now.
    public func snapshot() -> JobSnapshot {
        state.withLock { makeSnapshot($0) }
    }

    /// A rendering previously stored for the job's current state, if any.
    public func cachedRendering(forVersion version: Int) -> (bytes: [UInt8], digest: String)? {
        state.withLock { state in
            guard let rendering = state.rendering, rendering.version == version, state.version == version else { return nil }
            return (rendering.bytes, rendering.digest)
        }
    }

    /// Stores `bytes` (and their `digest`) as the rendering of the job at `version`; ignored if
    /// the job has moved on.
    public func storeRendering(_ bytes: [UInt8], digest: String, forVersion version: Int) {
        state.withLock { state in
            if state.version == version { state.rendering = (version, bytes, digest) }
        }
    }

    /// True once the job is in a final state.
    public var isFinished: Bool { state.withLock { $0.status.isFinished } }

    /// Runs `callback` exactly once with the final snapshot: when the job finishes, or at once
    /// (on the calling thread) if it already has. Callbacks run on the thread that finishes the
    /// job and must not block it for long.
    public func addDoneCallback(_ callback: @escaping @Sendable (JobSnapshot) -> Void) {
        whenFinished { _, snapshot in callback(snapshot) }
    }

    /// ``addDoneCallback(_:)`` for a callback that needs the job: it is handed the job, so it
    /// need not capture it. A strong capture would keep a job that never finishes (one a full
    /// queue refused) alive through its own callback; a weak one gives every job a side table,
    /// which makes each retain and release of it take the runtime's slow path.
    func whenFinished(_ callback: @escaping @Sendable (Job, JobSnapshot) -> Void) {
        let finished = state.withLock { state -> JobSnapshot? in
            if state.status.isFinished { return makeSnapshot(state) }
            state.callbacks.append(callback)
            return nil
        }
        if let finished { callback(self, finished) }
    }

    /// Calls `observer` with the job's snapshot after each state change from now on, on the
    /// thread that made the change, until ``removeObserver(_:)``. Returns the snapshot as it
    /// stands, read under the same lock, so that no change falls between the two.
    public func observe(_ observer: @escaping @Sendable (JobSnapshot) -> Void) -> (token: Int, current: JobSnapshot) {
        state.withLock { state in
            let token = state.nextObserverID
            state.nextObserverID += 1
            if !state.status.isFinished { state.observers[token] = observer }
            return (token, makeSnapshot(state))
        }
    }

    public func removeObserver(_ token: Int) {
        state.withLock { _ = $0.observers.removeValue(forKey: token) }
    }

    /// Blocks the calling thread until the job finishes or `timeout` passes. Returns the final
    /// snapshot, or `nil` on timeout. Never call it on an event-loop thread.
    public func result(timeout: Duration) -> JobSnapshot? {
        let done = DispatchSemaphore(value: 0)
        let box = Mutex<JobSnapshot?>(nil)
        addDoneCallback { snapshot in
            box.withLock { $0 = snapshot }
            done.signal()
        }
        _ = done.wait(timeout: .now() + timeout.dispatchInterval)
        return box.withLock { $0 }
    }

    /// Cancels the job: a scheduled or queued job at once, a running one by asking its work to stop.
    @discardableResult
    public func cancel() -> CancelOutcome {
        stop(.cancelled)
    }

    /// Cancels a waiting (queued or scheduled) job whose cancel the store has already recorded,
    /// at the time recorded: the completer announces it without writing it again. False, and
    /// nothing changes, if the job is no longer waiting.
    func cancelRecorded(at finishedAt: Date) -> Bool {
        finish(.failure(.cancelled), onlyIf: .waiting, at: finishedAt, recorded: true)
    }

    /// Whether the store holds this job's final state already (see ``cancelRecorded(at:)``).
    var isFinalRecorded: Bool { state.withLock { $0.finalRecorded } }

    /// Asks the job to stop for `reason`. Used by cancel, by a drain that interrupts, and (with
    /// `attempt`, so that a late timer cannot stop a later attempt) by the time limit.
    @discardableResult
    func stop(_ reason: StopReason, attempt onlyAttempt: Int? = nil) -> CancelOutcome {
        let outcome = state.withLock { state -> (CancelOutcome, CancellationSignal?) in
            if let onlyAttempt, state.attempt != onlyAttempt || state.status != .running {
                return (.alreadyFinished(state.status), nil)
            }
            switch state.status {
            case .scheduled, .queued: return (.cancelled, nil)
            case .running:
                if state.stopRequest == nil { state.stopRequest = reason }
                state.version += 1 // cancel_requested now shows
                return (.stopping, state.signal)
            case .succeeded, .failed, .cancelled: return (.alreadyFinished(state.status), nil)
            }
        }
        switch outcome {
        case (.cancelled, _):
            // A worker may have started the job in between; finish only if it is still waiting.
            if !finish(.failure(reason.failure), onlyIf: .waiting) { return stop(reason, attempt: onlyAttempt) }
        case (.stopping, let signal?):
            signal.raise(reason)
        default:
            break
        }
        return outcome.0
    }

    /// Gives the job its place in a queue: `release` runs if the job finishes (is cancelled)
    /// while still queued, and is dropped when a worker takes it. Returns false, keeping
    /// nothing, when the job is no longer queued: it was cancelled before it reached the
    /// queue, and the caller gives the place back itself.
    func holdQueueSlot(_ release: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            guard state.status == .queued else { return false }
            state.releaseQueueSlot = release
            return true
        }
    }

    /// Moves a scheduled job that fell due to `queued`. False if it is no longer scheduled.
    func markDue() -> Bool {
        transition { state in
            guard state.status == .scheduled else { return false }
            state.status = .queued
            state.nextAttemptAt = nil
            return true
        }
    }

    /// Moves a queued job to `running`. Returns nil if it is no longer queued (cancelled).
    ///
    /// The worker pool calls this under its own lock, so the observers are not told here: the
    /// caller delivers the returned notice once it holds no lock (observers may call back into
    /// the pool, for statistics, say).
    func markRunning(at now: Date = Date()) -> StateChangeNotice? {
        changeState { state in
            guard state.status == .queued else { return false }
            state.status = .running
            state.startedAt = now
            state.signal = CancellationSignal()
            state.stopRequest = nil
            state.releaseQueueSlot = nil
            return true
        }
    }

    /// Runs the work on the calling (worker) thread and records the outcome: a final state, or
    /// for a retryable failure with attempts left, `scheduled` for the next attempt.
    func execute(backoff: RetryBackoff) -> RunOutcome {
        let (signal, attempt, startedAt) = state.withLock { ($0.signal, $0.attempt, $0.startedAt ?? Date()) }
        let context = JobContext(signal: signal, jobID: id)
        let outcome: Result<JSONValue, JobFailure>
        do throws(JobFailure) {
            outcome = .success(try work(context))
        } catch {
            outcome = .failure(error)
        }
        if case .failure(let failure) = outcome, failure.isRetryable, attempt < options.maxAttempts {
            let due = Date().addingTimeInterval(backoff.delay(beforeAttempt: attempt + 1).seconds)
            let retried = transition { state in
                // A stop asked for during the run wins over the retry (see `stopRequest`).
                guard state.status == .running, state.stopRequest == nil else { return false }
                state.status = .scheduled
                state.attempt += 1
                state.lastError = failure
                state.startedAt = nil
                state.nextAttemptAt = due
                return true
            }
            if retried { return .retry(RetryPlan(failedAttempt: attempt, startedAt: startedAt, failure: failure, due: due)) }
        }
        _ = finish(outcome, onlyIf: .running)
        return .finished
    }

    /// Applies `change` under the lock; when it returns true, bumps the version and tells the
    /// observers and the state-change hook, outside the lock.
    private func transition(_ change: (inout State) -> Bool) -> Bool {
        guard let notice = changeState(change) else { return false }
        notice.deliver()
        return true
    }

    /// Applies `change` under the lock; when it returns true, bumps the version and returns
    /// the notice for the observers and the state-change hook, for the caller to deliver.
    private func changeState(_ change: (inout State) -> Bool) -> StateChangeNotice? {
        let changed = state.withLock { state -> (JobState, JobSnapshot, [@Sendable (JobSnapshot) -> Void])? in
            let before = state.status
            guard change(&state) else { return nil }
            state.version += 1
            return (before, makeSnapshot(state), Array(state.observers.values))
        }
        guard let (before, snapshot, observers) = changed else { return nil }
        return StateChangeNotice(job: self, from: before, snapshot: snapshot, hook: onStateChange, observers: observers)
    }

    /// Records the final state and runs the done-callbacks, outside the lock.
    private func finish(_ outcome: Result<JSONValue, JobFailure>, onlyIf expected: FinishableFrom, at finishedAt: Date? = nil,
                        recorded: Bool = false) -> Bool {
        let finished = state.withLock { state -> (JobState, JobSnapshot, [@Sendable (Job, JobSnapshot) -> Void], [@Sendable (JobSnapshot) -> Void], (@Sendable () -> Void)?)? in
            guard expected.includes(state.status) else { return nil }
            state.finalRecorded = recorded
            let before = state.status
            var outcome = outcome
            // A run that was asked to stop, and did not succeed anyway, ends for that reason.
            if case .failure = outcome, before == .running, let stop = state.stopRequest { outcome = .failure(stop.failure) }
            switch outcome {
            case .success(let value):
                state.status = .succeeded
                state.result = value
            case .failure(let failure):
                state.status = failure == .cancelled ? .cancelled : .failed
                state.error = failure
            }
            state.finishedAt = finishedAt ?? Date()
            state.nextAttemptAt = nil
            state.version += 1
            let callbacks = state.callbacks
            let observers = state.observers.isEmpty ? [] : Array(state.observers.values)
            state.callbacks = []
            state.observers = [:]
            let release = before == .queued ? state.releaseQueueSlot : nil
            state.releaseQueueSlot = nil
            return (before, makeSnapshot(state), callbacks, observers, release)
        }
        guard let (before, snapshot, callbacks, observers, release) = finished else { return false }
        release?()
        onStateChange?(self, before, snapshot.status)
        for callback in callbacks { callback(self, snapshot) }
        for observer in observers { observer(snapshot) }
        return true
    }

    /// The states a job may finish from, for one caller of ``finish(_:onlyIf:at:recorded:)``:
    /// a plain enum rather than a `Set`, which would be built (allocated and hashed) on every
    /// job's finish.
    private enum FinishableFrom {
        /// Queued or scheduled: ended without running (a cancel, a failed recovery).
        case waiting
        /// Running: the work returned.
        case running

        func includes(_ status: JobState) -> Bool {
            switch self {
            case .waiting: status == .queued || status == .scheduled
            case .running: status == .running
            }
        }
    }

    private func makeSnapshot(_ state: State) -> JobSnapshot {
        JobSnapshot(
            id: id, kind: kind, status: state.status, input: input, result: state.result,
            error: state.error, lastError: state.status == .scheduled ? state.lastError : nil,
            createdAt: createdAt, startedAt: state.startedAt,
            finishedAt: state.finishedAt, nextAttemptAt: state.nextAttemptAt,
            cancelRequested: state.status == .running && state.stopRequest != nil,
            webhook: state.webhookStatus,
            attempt: state.attempt, maxAttempts: options.maxAttempts,
            priority: options.priority, timeLimitSeconds: options.timeLimitSeconds,
            version: state.version)
    }
}

/// A failed attempt that will be retried, and when.
public struct RetryPlan: Sendable, Equatable {
    public var failedAttempt: Int
    public var startedAt: Date
    public var failure: JobFailure
    public var due: Date
}

/// A state change that has been made but not yet told to the job's observers and state-change
/// hook. Delivered once, by whoever made the change, when it holds no lock.
struct StateChangeNotice {
    let job: Job
    let from: JobState
    let snapshot: JobSnapshot
    let hook: JobStateChangeHook?
    let observers: [@Sendable (JobSnapshot) -> Void]

    func deliver() {
        hook?(job, from, snapshot.status)
        for observer in observers { observer(snapshot) }
    }
}
