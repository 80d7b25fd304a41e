/// What a job's work gets from the pool while it runs: a way to notice that it should stop.
public struct JobContext: Sendable {
    let signal: CancellationSignal

    /// The job's ID, for logs.
    public let jobID: JobID

    /// Why the job should stop, once a cancel or a shutdown asked it to.
    public var stopReason: StopReason? { signal.reason }

    /// Sleeps for `duration`, or throws the stop reason's failure as soon as the job is
    /// cancelled or interrupted.
    public func sleep(for duration: Duration) throws(JobFailure) {
        if let reason = signal.wait(for: duration) { throw reason.failure }
    }

    /// Throws if the job has been asked to stop.
    public func checkStop() throws(JobFailure) {
        if let reason = signal.reason { throw reason.failure }
    }

    /// Runs `handler` once when the job is asked to stop (at once if it already was). Work
    /// that blocks in other ways, such as a network transfer, uses this to abort promptly.
    public func onStop(_ handler: @escaping @Sendable (StopReason) -> Void) {
        signal.onRaise(handler)
    }
}
