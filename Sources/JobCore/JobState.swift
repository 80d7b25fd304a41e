/// Where a job is in its life. Each case says who moves a job into it.
public enum JobState: String, Codable, Sendable, CaseIterable {
    /// Set by ``JobExecutor/submit(kind:input:)`` when the job is accepted; the job waits
    /// for a free worker.
    case queued
    /// Set by a ``WorkerPool`` worker when it takes the job off the queue.
    case running
    /// Set by the worker when the job's work returned a result.
    case succeeded
    /// Set by the worker when the work threw a ``JobFailure``, or by a drain that had to
    /// interrupt the job.
    case failed
    /// Set by ``Job/cancel()``: at once for a queued job, or by the worker once a running
    /// job has stopped.
    case cancelled

    /// True for the states a job never leaves.
    public var isFinished: Bool {
        switch self {
        case .queued, .running: return false
        case .succeeded, .failed, .cancelled: return true
        }
    }
}
