import Dispatch
import Synchronization

/// Why a running job is being asked to stop.
public enum StopReason: Sendable, Hashable {
    /// A client cancelled the job.
    case cancelled
    /// The server is shutting down and the grace period ran out.
    case interrupted
    /// The job ran past its `time_limit_seconds`.
    case timeLimit(seconds: Double)

    /// The failure a job that stopped for this reason records.
    public var failure: JobFailure {
        switch self {
        case .cancelled: return .cancelled
        case .interrupted: return .interrupted
        case .timeLimit(let seconds): return .timeLimit(seconds: seconds)
        }
    }
}

/// A one-shot stop request that a job's work can sleep on, poll, or hook.
///
/// Raising it wakes a sleeping job at once (the sleep waits on a semaphore rather than
/// polling), which is what lets a cancel stop a running `write_code` job within milliseconds.
final class CancellationSignal: Sendable {
    private struct State {
        var reason: StopReason?
        var handlers: [@Sendable (StopReason) -> Void] = []
        /// Made by the first ``wait(for:)``: most jobs never sleep on their signal, and a
        /// semaphore per job would be a needless allocation on the submit path.
        var wakeUp: DispatchSemaphore?
    }

    private let state = Mutex(State())

    /// The reason, once raised.
    var reason: StopReason? { state.withLock { $0.reason } }

    /// Raises the signal. Only the first call has an effect; it returns whether it was first.
    @discardableResult
    func raise(_ reason: StopReason) -> Bool {
        let raised = state.withLock { state -> (handlers: [@Sendable (StopReason) -> Void], wakeUp: DispatchSemaphore?)? in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.handlers = [] }
            return (state.handlers, state.wakeUp)
        }
        guard let (handlers, wakeUp) = raised else { return false }
        wakeUp?.signal()
        for handler in handlers { handler(reason) }
        return true
    }

    /// Runs `handler` once when the signal is raised, or at once if it already was.
    func onRaise(_ handler: @escaping @Sendable (StopReason) -> Void) {
        let raised = state.withLock { state -> StopReason? in
            if let reason = state.reason { return reason }
            state.handlers.append(handler)
            return nil
        }
        if let raised { handler(raised) }
    }

    /// Blocks for up to `duration`; returns early with the reason if the signal is raised.
    func wait(for duration: Duration) -> StopReason? {
        let wakeUp = state.withLock { state -> DispatchSemaphore? in
            guard state.reason == nil else { return nil }
            if state.wakeUp == nil { state.wakeUp = DispatchSemaphore(value: 0) }
            return state.wakeUp
        }
        guard let wakeUp else { return reason }
        if wakeUp.wait(timeout: .now() + duration.dispatchInterval) == .success {
            wakeUp.signal() // leave the wake-up in place for any later wait
        }
        return reason
    }
}
