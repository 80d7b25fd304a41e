import Dispatch
import Foundation
import JobCore
import Synchronization

/// Applies a change and waits until it is durable (or refused).
/// Throws if the store has not answered within 20 s.
@discardableResult
public func write(_ store: any JobStore, _ change: StoreChange) throws -> Result<Void, StoreError> {
    let outcome = submit(store, change)
    guard outcome.wait() == .success, let result = outcome.result else { throw StoreTestTimeout() }
    return result
}

/// A store did not answer a write in time.
public struct StoreTestTimeout: Error, CustomStringConvertible {
    public var description: String { "the store did not answer a write within 20 s" }
}

/// A change applied to a store, whose outcome comes later.
public final class PendingWrite: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Mutex<Result<Void, StoreError>?>(nil)

    public init() {}

    public func finish(_ result: Result<Void, StoreError>) {
        outcome.withLock { $0 = result }
        done.signal()
    }

    public var result: Result<Void, StoreError>? { outcome.withLock { $0 } }
    public var isFinished: Bool { result != nil }

    public func wait(timeout: DispatchTime = .now() + 20) -> DispatchTimeoutResult { done.wait(timeout: timeout) }
}

/// Applies a change without waiting for it.
public func submit(_ store: any JobStore, _ change: StoreChange) -> PendingWrite {
    let pending = PendingWrite()
    store.apply(change) { pending.finish($0) }
    return pending
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(10), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return try condition()
}

/// A job as a client would submit it; times are whole microseconds, as stored.
public func makeJob(kind: String = "write_code", status: JobState = .queued, owner: String? = nil, createdAt: Date,
             webhook: WebhookTarget? = nil, idempotency: IdempotencyRecord? = nil, name: String = "alex") -> JobRecord {
    JobRecord(id: JobID(), kind: kind, input: .object(["name": .string(name)]), status: status,
              createdAt: createdAt, nextAttemptAt: status == .scheduled ? createdAt.addingTimeInterval(60) : nil,
              options: JobOptions(idempotency: idempotency), webhook: webhook, owner: owner)
}

/// A fixed starting time, so that tests do not depend on the clock; whole seconds.
public let epoch = Date(timeIntervalSince1970: 1_800_000_000)
