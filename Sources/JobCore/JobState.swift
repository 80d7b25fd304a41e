/// Where a job is in its life. Each case says who moves a job into it.
public enum JobState: String, Codable, Sendable, CaseIterable {
    /// Set at submission for a job with `run_at` or `delay_seconds`, and by a retryable failure
    /// that has attempts left; the executor's timer queues the job when it is due.
    case scheduled
    /// Set when the job is accepted (or falls due); the job waits for a free worker.
    case queued
    /// Set by a ``WorkerPool`` worker when it takes the job off the queue.
    case running
    /// Set by the worker when the job's work returned a result.
    case succeeded
    /// Set by the worker when the work threw a ``JobFailure`` that is not retried, or by a
    /// drain that had to interrupt the job, or by its time limit.
    case failed
    /// Set by ``Job/cancel()``: at once for a scheduled or queued job, or by the worker once a
    /// running job has stopped.
    case cancelled

    /// True for the states a job never leaves.
    public var isFinished: Bool {
        switch self {
        case .scheduled, .queued, .running: return false
        case .succeeded, .failed, .cancelled: return true
        }
    }

    /// The state's place within one attempt (scheduled, queued, running, then final), used to
    /// number a job's state changes so that event IDs increase and survive restarts.
    var orderWithinAttempt: Int {
        switch self {
        case .scheduled: return 0
        case .queued: return 1
        case .running: return 2
        case .succeeded, .failed, .cancelled: return 3
        }
    }
}
