import Dispatch
import Synchronization

/// Jobs committed to a shared store but not yet accepted in memory.
///
/// A submission is accepted (made live here) by the store's completion, just after its
/// commit. Another thread, a shared queue's claimer, can claim the committed row in between;
/// without this gate it would find no live job and make a second handle for the same job (so
/// that waiters on the first never saw it run). The claimer waits here instead: the completion
/// is sure to come, since the claim saw the commit.
///
/// ```swift
/// let settled = gate.enter(ids)         // before the store's write
/// // … the completion accepts the jobs, then:
/// gate.leave(ids, settled)
/// gate.waitUntilSettled(id)             // the claimer, before looking the job up
/// ```
final class AcceptanceGate: Sendable {
    private let pending = Mutex<[JobID: DispatchGroup]>([:])

    /// Marks `ids` as being accepted; returns the group ``leave(_:_:)`` takes.
    func enter(_ ids: [JobID]) -> DispatchGroup {
        let group = DispatchGroup()
        group.enter()
        pending.withLock { pending in
            for id in ids { pending[id] = group }
        }
        return group
    }

    /// The jobs were accepted (or refused): waiters go on.
    func leave(_ ids: [JobID], _ group: DispatchGroup) {
        pending.withLock { pending in
            for id in ids { pending[id] = nil }
        }
        group.leave()
    }

    /// Waits (up to `timeout`, a guard against a completion that never runs) while the job is
    /// being accepted.
    func waitUntilSettled(_ id: JobID, timeout: Duration = .seconds(10)) {
        guard let group = pending.withLock({ $0[id] }) else { return }
        _ = group.wait(timeout: .now() + timeout.dispatchInterval)
    }
}
