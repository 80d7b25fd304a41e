import Dispatch
import Foundation
import Synchronization

/// The work a job runs on a worker thread: its input already checked and captured.
public typealias JobWork = @Sendable (JobContext) throws(JobFailure) -> JSONValue

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
    /// Attempts allowed in all, counting restarts after a crash.
    public let maxAttempts: Int
    /// This run's attempt number, from 1; a crash recovery runs the job as the next attempt.
    public let attempt: Int
    let work: JobWork
    private let signal = CancellationSignal()
    private let state = Mutex(State())

    private struct State {
        var status = JobState.queued
        var result: JSONValue?
        var error: JobFailure?
        var startedAt: Date?
        var finishedAt: Date?
        var callbacks: [@Sendable (JobSnapshot) -> Void] = []
        /// Bumped on every visible change, so a reader can tell whether its copy is current.
        var version = 0
        /// A rendering of the job at `version`, kept for whoever made it (the HTTP layer
        /// caches its JSON here, so a finished job polled a thousand times is encoded once).
        var rendering: (version: Int, bytes: [UInt8])?
        var webhookStatus: WebhookStatus?
    }

    /// What ``cancel()`` did.
    public enum CancelOutcome: Sendable, Equatable {
        /// The job was queued and is now `cancelled`.
        case cancelled
        /// The job is running; it has been asked to stop and will end `cancelled` shortly.
        case stopping
        /// The job had already finished in this state; nothing changed.
        case alreadyFinished(JobState)
    }

    init(id: JobID = JobID(), kind: String, input: JSONValue, createdAt: Date, webhook: WebhookTarget? = nil,
         owner: String? = nil, attempt: Int = 1, maxAttempts: Int = 3, work: @escaping JobWork) {
        self.owner = owner
        self.id = id
        self.kind = kind
        self.input = input
        self.createdAt = createdAt
        self.webhook = webhook
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.work = work
        if let webhook {
            state.withLock { $0.webhookStatus = WebhookStatus(url: webhook.url, state: .pending, attempts: 0) }
        }
    }

    /// How the store names this job.
    public var key: JobKey { JobKey(id: id, createdAt: createdAt) }

    /// A job as it was stored. A job that was running runs again as `attempt`; the caller has
    /// set `record.status` to `.queued` for that.
    convenience init(restoring record: JobRecord, webhookStatus: WebhookStatus?, work: @escaping JobWork) {
        self.init(id: record.id, kind: record.kind, input: record.input, createdAt: record.createdAt,
                  webhook: record.webhook, owner: record.owner, attempt: record.attempt, maxAttempts: record.maxAttempts, work: work)
        state.withLock { state in
            state.status = record.status
            state.result = record.result
            state.error = record.error
            state.startedAt = record.status == .queued ? nil : record.startedAt
            state.finishedAt = record.finishedAt
            if let webhookStatus { state.webhookStatus = webhookStatus }
        }
    }

    /// The record to store for this job as it stands.
    func record() -> JobRecord {
        let snapshot = snapshot()
        return JobRecord(id: id, kind: kind, input: input, status: snapshot.status, result: snapshot.result,
                         error: snapshot.error, createdAt: createdAt, startedAt: snapshot.startedAt,
                         finishedAt: snapshot.finishedAt, attempt: attempt, maxAttempts: maxAttempts, webhook: webhook,
                         owner: owner)
    }

    /// Ends a queued job without running it (recovery found it out of attempts, say).
    func fail(_ failure: JobFailure) {
        finish(.failure(failure), onlyIf: .queued)
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

    /// The job as it stands now.
    public func snapshot() -> JobSnapshot {
        state.withLock { makeSnapshot($0) }
    }

    /// A rendering previously stored for the job's current state, if any.
    public func cachedRendering(forVersion version: Int) -> [UInt8]? {
        state.withLock { state in
            guard let rendering = state.rendering, rendering.version == version, state.version == version else { return nil }
            return rendering.bytes
        }
    }

    /// Stores `bytes` as the rendering of the job at `version`; ignored if the job has moved on.
    public func storeRendering(_ bytes: [UInt8], forVersion version: Int) {
        state.withLock { state in
            if state.version == version { state.rendering = (version, bytes) }
        }
    }

    /// True once the job is in a final state.
    public var isFinished: Bool { state.withLock { $0.status.isFinished } }

    /// Runs `callback` exactly once with the final snapshot: when the job finishes, or at once
    /// (on the calling thread) if it already has. Callbacks run on the thread that finishes the
    /// job and must not block it for long.
    public func addDoneCallback(_ callback: @escaping @Sendable (JobSnapshot) -> Void) {
        let finished = state.withLock { state -> JobSnapshot? in
            if state.status.isFinished { return makeSnapshot(state) }
            state.callbacks.append(callback)
            return nil
        }
        if let finished { callback(finished) }
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

    /// Cancels the job: a queued job at once, a running one by asking its work to stop.
    @discardableResult
    public func cancel() -> CancelOutcome {
        stop(.cancelled)
    }

    /// Asks the job to stop for `reason`. Used by cancel and by a drain that interrupts.
    func stop(_ reason: StopReason) -> CancelOutcome {
        let outcome = state.withLock { state -> CancelOutcome in
            switch state.status {
            case .queued: return .cancelled
            case .running: return .stopping
            case .succeeded, .failed, .cancelled: return .alreadyFinished(state.status)
            }
        }
        switch outcome {
        case .cancelled:
            // A worker may have started the job in between; finish only if it is still queued.
            if !finish(.failure(reason.failure), onlyIf: .queued) { return stop(reason) }
        case .stopping:
            signal.raise(reason)
            state.withLock { $0.version += 1 } // cancel_requested now shows
        case .alreadyFinished:
            break
        }
        return outcome
    }

    /// Moves a queued job to `running`. Returns false if it is no longer queued (cancelled).
    func markRunning(at now: Date = Date()) -> Bool {
        state.withLock { state in
            guard state.status == .queued else { return false }
            state.status = .running
            state.startedAt = now
            state.version += 1
            return true
        }
    }

    /// Runs the work on the calling (worker) thread and records the outcome.
    func execute() {
        let context = JobContext(signal: signal, jobID: id)
        let outcome: Result<JSONValue, JobFailure>
        do throws(JobFailure) {
            outcome = .success(try work(context))
        } catch {
            outcome = .failure(error)
        }
        finish(outcome, onlyIf: .running)
    }

    /// Records the final state and runs the done-callbacks, outside the lock.
    @discardableResult
    private func finish(_ outcome: Result<JSONValue, JobFailure>, onlyIf expected: JobState) -> Bool {
        let finished = state.withLock { state -> (JobSnapshot, [@Sendable (JobSnapshot) -> Void])? in
            guard state.status == expected else { return nil }
            switch outcome {
            case .success(let value):
                state.status = .succeeded
                state.result = value
            case .failure(let failure):
                state.status = failure == .cancelled ? .cancelled : .failed
                state.error = failure
            }
            state.finishedAt = Date()
            state.version += 1
            let callbacks = state.callbacks
            state.callbacks = []
            return (makeSnapshot(state), callbacks)
        }
        guard let (snapshot, callbacks) = finished else { return false }
        for callback in callbacks { callback(snapshot) }
        return true
    }

    private func makeSnapshot(_ state: State) -> JobSnapshot {
        JobSnapshot(
            id: id, kind: kind, status: state.status, input: input, result: state.result,
            error: state.error, createdAt: createdAt, startedAt: state.startedAt,
            finishedAt: state.finishedAt,
            cancelRequested: state.status == .running && signal.reason != nil,
            webhook: state.webhookStatus,
            attempt: attempt, maxAttempts: maxAttempts,
            version: state.version)
    }
}
