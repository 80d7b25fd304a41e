import Foundation
import Synchronization

/// The jobs this process holds as live work: queued, scheduled and running, by ID and by the
/// idempotency key they were submitted with. A job joins once it is durable and accepted, and
/// leaves once its final state is durable; from then on the store (and the finished-job
/// cache in front of it) answers for it. So this holds what the workers will do, never history.
final class LiveJobs: Sendable {
    private struct State {
        var byID: [JobID: Job] = [:]
        var byIdempotencyKey: [IdempotencyScope: Job] = [:]
        var lastCreatedAt = Date.distantPast
    }

    private struct IdempotencyScope: Hashable {
        var owner: String?
        var key: String
    }

    private let state = Mutex(State())

    /// A creation time later than every earlier one, for a job about to be made.
    ///
    /// Creation times are whole microseconds, as the API shows them (so that a cursor
    /// round-trips exactly), and strictly increasing, so that `(created_at, id)` orders jobs as
    /// they arrived and a cursor stays valid however many jobs arrive meanwhile.
    func nextCreationTime(now: Date = Date()) -> Date {
        state.withLock { state in
            let micros = (now.timeIntervalSince1970 * 1_000_000).rounded(.down)
            let last = (state.lastCreatedAt.timeIntervalSince1970 * 1_000_000).rounded()
            let next = Date(timeIntervalSince1970: max(micros, last + 1) / 1_000_000)
            state.lastCreatedAt = next
            return next
        }
    }

    /// Creation times continue after the newest stored job's (recovery).
    func noteCreationTime(_ createdAt: Date) {
        state.withLock { state in
            if createdAt > state.lastCreatedAt { state.lastCreatedAt = createdAt }
        }
    }

    func insert(_ job: Job) {
        state.withLock { state in
            state.byID[job.id] = job
            if let record = job.options.idempotency {
                state.byIdempotencyKey[IdempotencyScope(owner: job.owner, key: record.key)] = job
            }
        }
    }

    func remove(_ job: Job) {
        state.withLock { state in
            guard state.byID[job.id] === job else { return }
            state.byID[job.id] = nil
            if let record = job.options.idempotency {
                let scope = IdempotencyScope(owner: job.owner, key: record.key)
                if state.byIdempotencyKey[scope] === job { state.byIdempotencyKey[scope] = nil }
            }
        }
    }

    func job(withID id: JobID) -> Job? {
        state.withLock { $0.byID[id] }
    }

    /// The live job an unexpired idempotency key of this owner created.
    func job(forIdempotencyKey key: String, owner: String?, now: Date) -> Job? {
        state.withLock { state in
            guard let job = state.byIdempotencyKey[IdempotencyScope(owner: owner, key: key)],
                  let record = job.options.idempotency, record.expiresAt > now else { return nil }
            return job
        }
    }

    var count: Int { state.withLock { $0.byID.count } }

    /// The live jobs waiting for a claim (queued or scheduled in memory).
    func waiting() -> [Job] {
        state.withLock { Array($0.byID.values) }.filter { [.queued, .scheduled].contains($0.snapshot().status) }
    }
}
