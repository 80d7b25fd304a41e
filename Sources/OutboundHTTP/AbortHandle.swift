import CCurl
import Synchronization

/// Stops one transfer from another thread, at once: it wakes the transfer's `curl_multi_poll`
/// with `curl_multi_wakeup`, which curl makes thread-safe. (curl's progress callback alone can
/// slow to one call a second on a stalled transfer.)
public final class AbortHandle: Sendable {
    /// A curl multi handle. @unchecked: it is only passed to curl_multi_wakeup, under the lock,
    /// and cleared under the same lock when the transfer ends, before the handle is reused.
    private struct MultiHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private struct State {
        var isAborted = false
        /// The multi handle while the transfer runs; nil before and after.
        var multi: MultiHandle?
    }

    private let state = Mutex(State())

    public init() {}

    /// Aborts the transfer, or makes it abort as soon as it starts.
    public func abort() {
        state.withLock { state in
            state.isAborted = true
            if let multi = state.multi { curl_multi_wakeup(multi.pointer) }
        }
    }

    var isAborted: Bool { state.withLock { $0.isAborted } }

    /// Binds the handle to a running transfer. Returns false if it was already aborted.
    func attach(_ multi: UnsafeMutableRawPointer) -> Bool {
        state.withLock { state in
            guard !state.isAborted else { return false }
            state.multi = MultiHandle(pointer: multi)
            return true
        }
    }

    func detach() {
        state.withLock { $0.multi = nil }
    }
}
